// Package version holds azinit's version, set at link time by the Makefile.
package version

// Version is the release this binary was built from.
var Version = "dev"

// UserAgent is the User-Agent azinit sends to platform endpoints.
func UserAgent() string { return "azinit/" + Version }
