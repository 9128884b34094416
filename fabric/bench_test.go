package fabric

import (
	"io"
	"net/http"
	"path/filepath"
	"testing"
)

// BenchmarkGoalState measures a goal state request through the fabric on
// loopback, recording included.
func BenchmarkGoalState(b *testing.B) {
	f, err := Start(b.Context(), Options{Scenario: filepath.Join("..", "testdata", "scenarios", "demo")})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	url := f.URLs().Wireserver + "/machine/?comp=goalstate"
	c := &http.Client{}
	for b.Loop() {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkLoadScenario measures what a reload costs: reading the demo
// scenario and building its documents.
func BenchmarkLoadScenario(b *testing.B) {
	addrs := Addrs{"http://127.0.0.1:8080", "http://127.0.0.1:32526", "http://127.0.0.1:8081"}
	for b.Loop() {
		s, err := LoadScenario(filepath.Join("..", "testdata", "scenarios", "demo"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := buildState(s, 1, addrs); err != nil {
			b.Fatal(err)
		}
	}
}
