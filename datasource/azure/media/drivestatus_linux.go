package media

import (
	"os"

	"golang.org/x/sys/unix"
)

// CDROM_DRIVE_STATUS and its slot argument for the current disc (linux/cdrom.h); the same numbers
// on every architecture.
const (
	cdromDriveStatus = 0x5326
	cdslCurrent      = 1<<31 - 1
)

// driveStatus asks the CD-ROM driver whether device holds a disc. O_NONBLOCK lets the open succeed
// without one.
func driveStatus(device string) (int, error) {
	fd, err := unix.Open(device, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: device, Err: err}
	}
	defer unix.Close(fd)
	status, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), cdromDriveStatus, cdslCurrent)
	if errno != 0 {
		return 0, &os.PathError{Op: "CDROM_DRIVE_STATUS", Path: device, Err: errno}
	}
	return int(status), nil
}
