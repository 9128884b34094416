package extconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ArtifactsProfile is the InVMArtifactsProfile blob named by
// ExtensionsConfig (§10).
type ArtifactsProfile struct {
	// OnHold asks the agent not to process extensions yet
	// (over-provisioning).
	OnHold bool
}

// ParseArtifactsProfile parses the profile. onHold may be a boolean or the
// string "true" or "false" in any case; anything else is an error, which
// the caller takes as not on hold, as it does a failed download. Trailing
// padding (spaces, NULs: the blob may be a page blob) is ignored, and an
// empty blob is a profile without a hold.
func ParseArtifactsProfile(b []byte) (*ArtifactsProfile, error) {
	b = bytes.TrimRight(b, " \t\r\n\x00")
	if len(b) == 0 {
		return &ArtifactsProfile{}, nil
	}
	// Keys are matched exactly, as the platform's agent does.
	o, err := asObject(b, "the document")
	if err != nil {
		return nil, fmt.Errorf("parsing the artifacts profile: %w", err)
	}
	var onHold flexBool
	if o.has("onHold") && json.Unmarshal(o["onHold"], &onHold) != nil {
		return nil, fmt.Errorf("parsing the artifacts profile: onHold: got %s, want true or false", got(o["onHold"]))
	}
	return &ArtifactsProfile{OnHold: bool(onHold)}, nil
}
