package udf

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/azinit/azinit/internal/udf/udftest"
)

// FuzzOpen opens arbitrary bytes as a UDF volume and, when that succeeds, walks the whole tree and
// reads every file: nothing may panic, and the tree read at Open must walk without errors.
//
// The input is a sparse image (udftest.Sparse): the seeds are every test image and the writer's
// output for every option combination.
func FuzzOpen(f *testing.F) {
	images, err := filepath.Glob(filepath.Join(mediaDir, "*.img.gz"))
	if err != nil || len(images) == 0 {
		f.Fatalf("no test images in %s: %v", mediaDir, err)
	}
	for _, p := range images {
		f.Add(udftest.EncodeSparse(testImage(f, filepath.Base(p))))
	}
	var files []File
	for p, c := range mediaContent(f) {
		files = append(files, File{Name: p, Data: []byte(c)})
	}
	for _, opts := range writeOptions {
		f.Add(udftest.EncodeSparse(write(f, "FUZZ", files, opts)))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		img := udftest.DecodeSparse(in)
		fsys, err := Open(img, img.Size())
		if err != nil {
			return
		}
		_ = fsys.Label()
		err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil || d.IsDir() {
				return err
			}
			if b, err := fsys.ReadFile(p); err == nil && int64(len(b)) != info.Size() {
				t.Errorf("%q: read %d bytes, size %d", p, len(b), info.Size())
			}
			return nil
		})
		if err != nil {
			t.Errorf("walking an opened volume: %v", err)
		}
	})
}
