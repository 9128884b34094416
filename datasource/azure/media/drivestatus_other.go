//go:build !linux

package media

import "errors"

func driveStatus(string) (int, error) {
	return 0, errors.ErrUnsupported
}
