// Package extconfig parses the extensions side of the Azure goal state and
// the files extension handlers exchange with the agent: ExtensionsConfig
// (WireServer) and vmSettings (HostGAPlugin, Fast Track) into one
// ExtensionsGoalState, extension manifests and version selection, the
// InVMArtifactsProfile, HandlerManifest.json, extension status and
// heartbeat files, and telemetry event files (wire-protocol.md §9-§12, §14,
// §17).
//
// Every parser is pure: bytes in, a value or an error naming the element or
// field out. Protected settings are secret: they are held in a Secret that
// prints, logs and encodes as redacted, and no error quotes them.
package extconfig

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// ExtensionsGoalState is what one ExtensionsConfig or vmSettings document
// asks of the extensions, whichever channel it came from. Its id
// ("incarnation_<N>" or "etag_<ETag>") belongs to the caller, which knows
// the incarnation or ETag.
type ExtensionsGoalState struct {
	Channel Channel
	// Source is Fabric for ExtensionsConfig; for vmSettings it is the
	// document's extensionGoalStatesSource (FastTrack or Fabric, UNKNOWN
	// when absent). Fabric vmSettings are to be ignored (§6).
	Source Source

	ActivityID    string // ZeroGUID when the document gives none
	CorrelationID string // ZeroGUID when the document gives none
	// InSvdSeqNo is the document's inSvdSeqNo ("" when absent). vmSettings
	// echo it in the status blob; for ExtensionsConfig the incarnation is
	// echoed instead.
	InSvdSeqNo string
	// CreatedOn is when the platform created the goal state
	// (InVMGoalStateMetaData@createdOnTicks or
	// extensionsLastModifiedTickCount, .NET ticks). It is the zero Time
	// (0001-01-01 UTC) when absent or unreadable, which sorts first. The
	// caller compares it to choose between the two channels (§6).
	CreatedOn time.Time

	// StatusUploadBlob is the SAS URL the aggregate status goes to; ""
	// when the document has none.
	StatusUploadBlob string
	StatusBlobType   BlobType

	RequiredFeatures []string
	GAFamilies       []GAFamily
	Location         string // the region, when the document names it

	// OnHold comes with vmSettings. For ExtensionsConfig it is decided by
	// fetching InVMArtifactsProfileBlob (ParseArtifactsProfile).
	OnHold                   bool
	InVMArtifactsProfileBlob string // ExtensionsConfig only; "" when absent

	// HostGAPluginVersion and SchemaVersion come with vmSettings only
	// (zero when absent).
	HostGAPluginVersion Version
	SchemaVersion       Version

	Handlers []Handler
}

// Channel is where an extensions goal state was fetched from.
type Channel string

// Channels.
const (
	ChannelWireServer   Channel = "WireServer"   // ExtensionsConfig
	ChannelHostGAPlugin Channel = "HostGAPlugin" // vmSettings
)

// Source is where an extensions goal state originated.
type Source string

// Sources.
const (
	SourceFabric    Source = "Fabric"
	SourceFastTrack Source = "FastTrack"
	SourceUnknown   Source = "UNKNOWN" // vmSettings without extensionGoalStatesSource
)

// BlobType is the kind of Azure blob the status is uploaded to.
type BlobType string

// Blob types. Documents naming anything else get BlockBlob.
const (
	BlockBlob BlobType = "BlockBlob"
	PageBlob  BlobType = "PageBlob"
)

// ZeroGUID stands for an activity or correlation id the document does not
// give.
const ZeroGUID = "00000000-0000-0000-0000-000000000000"

// SupportsEncodedSignature reports whether the channel carries the
// handlers' encodedSignature: ExtensionsConfig always does, vmSettings from
// HostGAPlugin 1.0.8.159 on (§11.3).
func (g *ExtensionsGoalState) SupportsEncodedSignature() bool {
	return g.Channel == ChannelWireServer || g.HostGAPluginVersion.Compare(mustVersion("1.0.8.159")) >= 0
}

// HostGAPluginTooOld reports whether vmSettings came from a HostGAPlugin
// older than 1.0.8.133, whose vmSettings are to be treated as unsupported
// (like a 404, §12.5).
func (g *ExtensionsGoalState) HostGAPluginTooOld() bool {
	return g.Channel == ChannelHostGAPlugin && g.HostGAPluginVersion.Compare(mustVersion("1.0.8.133")) < 0
}

func mustVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// GAFamily is an agent family (Prod, Test) and where its manifest is; only
// agent self-update uses it.
type GAFamily struct {
	Name                      string
	Version                   string // RSM-requested version, "" when none
	FromVersion               string
	IsVersionFromRSM          bool
	IsVMEnabledForRSMUpgrades bool
	URIs                      []string
}

// State is the state a handler or an extension is asked to be in.
type State string

// States. Handlers are enabled, disabled (legacy) or uninstall; the
// extensions of a multi-config handler are enabled or disabled (other
// values are kept lower-cased and mean neither). A single-config
// handler's settings carry enabled (ExtensionsConfig) or the handler's
// state (vmSettings), as the platform's agent does.
const (
	StateEnabled   State = "enabled"
	StateDisabled  State = "disabled"
	StateUninstall State = "uninstall"
)

func (s State) handlerState() bool {
	return s == StateEnabled || s == StateDisabled || s == StateUninstall
}

// Handler is one extension handler (a Plugin) of the goal state with its
// settings.
type Handler struct {
	Name    string
	Version string // as requested; Manifest.Select picks the package
	State   State

	// Manifest locations, tried in the order of ManifestURIs.
	Location            string
	FailoverLocation    string
	AdditionalLocations []string

	// EncodedSignature is the base64 CMS signature of the package, ""
	// when the handler is unsigned or the channel does not carry it.
	EncodedSignature string

	// MultiConfig is set when the handler runs several named extensions,
	// each with its own Settings.
	MultiConfig bool

	// Settings holds one entry per extension: at most one for a
	// single-config handler (none when it has no settings).
	Settings []Settings

	// Invalid is why the platform's configuration of this handler is
	// unusable, in the platform agent's words; "" when it is usable. An
	// invalid handler is not processed but is reported (NotReady, "Ran
	// into config errors: <Invalid>"), with what could be parsed of its
	// settings. Only ExtensionsConfig marks handlers invalid; vmSettings
	// fail as a whole.
	Invalid string
}

// ManifestURIs are the handler's manifest locations in the order the
// document gives them: location, failover location, additional
// locations. Empty locations are left out.
func (h *Handler) ManifestURIs() []string {
	var uris []string
	for _, u := range append([]string{h.Location, h.FailoverLocation}, h.AdditionalLocations...) {
		if u != "" {
			uris = append(uris, u)
		}
	}
	return uris
}

// Settings are one extension's runtime settings: what goes into
// config/<seqNo>.settings (§17.4).
type Settings struct {
	// Name is the extension name: the handler name for single-config
	// handlers.
	Name            string
	SeqNo           int
	State           State
	DependencyLevel int

	// PublicSettings is the compact JSON value of publicSettings (an
	// object as a rule), nil when absent or null.
	PublicSettings                  json.RawMessage
	ProtectedSettingsCertThumbprint string
	// ProtectedSettings is the base64 CMS blob, encrypted to the
	// certificate named by the thumbprint and passed to the extension
	// untouched.
	ProtectedSettings Secret
}

// Secret holds a protected setting. Printing (fmt, including %#v and
// inside other values), logging (slog) and JSON encoding show only
// whether it is set; Reveal gives the value, for the settings file the
// extension reads.
type Secret struct {
	// A pointer prints as an address even where fmt cannot call String
	// (a Secret inside an unexported field).
	value *string
}

// NewSecret holds s; an empty s is no secret.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{value: &s}
}

// Reveal is the secret; "" when unset.
func (s Secret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return *s.value
}

// IsSet reports whether there is a secret.
func (s Secret) IsSet() bool { return s.value != nil }

// Equal reports whether s and t hold the same secret (for go-cmp).
func (s Secret) Equal(t Secret) bool { return s.Reveal() == t.Reveal() }

const redacted = "***REDACTED***"

// String is "***REDACTED***" when set, "" when not.
func (s Secret) String() string {
	if s.IsSet() {
		return redacted
	}
	return ""
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue keeps slog from printing the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes "***REDACTED***", or null when unset: the secret
// never reaches a JSON encoding. The settings file is built with Reveal.
func (s Secret) MarshalJSON() ([]byte, error) {
	if !s.IsSet() {
		return []byte("null"), nil
	}
	return []byte(strconv.Quote(redacted)), nil
}

// ticksPerSecond and unixTicks relate .NET ticks (100 ns since
// 0001-01-01 UTC) to Unix time; maxTicks is the last tick of year 9999.
const (
	ticksPerSecond = 10_000_000
	unixTicks      = 62_135_596_800 * ticksPerSecond
	maxTicks       = 3_155_378_975_999_999_999
)

// ticksToTime converts .NET ticks given as decimal text (an integer, or a
// number in any JSON form) to a time; the zero Time when s is empty, not a
// number or outside years 1-9999, as the platform's agent treats it.
func ticksToTime(s string) time.Time {
	s = strings.TrimSpace(s)
	ticks, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || !(f >= 0 && f <= maxTicks) {
			return time.Time{}
		}
		ticks = int64(f)
	}
	if ticks < 0 || ticks > maxTicks {
		return time.Time{}
	}
	rel := ticks - unixTicks
	return time.Unix(rel/ticksPerSecond, rel%ticksPerSecond*100).UTC()
}

// idOrZero is id, or ZeroGUID when id is empty.
func idOrZero(id string) string {
	if id == "" {
		return ZeroGUID
	}
	return id
}

// blobType is t when it names a blob type, else BlockBlob.
func blobType(t string) BlobType {
	if BlobType(t) == PageBlob {
		return PageBlob
	}
	return BlockBlob
}
