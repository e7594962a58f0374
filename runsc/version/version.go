// Package version holds runsc's version, stamped at link time by the
// Makefile (-X carapace.dev/carapace/runsc/version.Version=…).
package version

// Version is runsc's version; "dev" when built without the Makefile.
var Version = "dev"
