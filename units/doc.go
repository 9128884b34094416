// Package units holds azinit's systemd units; its test checks them with
// systemd-analyze verify.
package units
