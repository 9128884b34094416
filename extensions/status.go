package extensions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
)

// maxStatusRead bounds how much of a status file is read; larger files
// are reported as invalid rather than read into memory.
const maxStatusRead = 8 << 20

// readStatus reads the item's status file in its handler's version
// directory; nil and no error when there is none yet.
func (m *Manager) readStatus(version string, it item) (*extconfig.Status, error) {
	file := path.Join(m.Layout.Dir(it.handler.Name, version), statusDir, settingsBase(it.ext() != "", it.ext(), it.seq())+".status")
	f, err := m.Root.OpenFile(file, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStatusRead+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStatusRead {
		return nil, fmt.Errorf("%s is over %d bytes", file, maxStatusRead)
	}
	return extconfig.ParseStatus(b)
}

// AgentInfo describes the agent and the machine in the aggregate status.
type AgentInfo struct {
	// Version is azinit's own version, told in the agent's message.
	Version                         string
	ComputerName, OSName, OSVersion string
	// FastTrack is set when goal states may come from the HostGAPlugin.
	FastTrack bool
}

// ProtocolVersion is the guest agent version azinit reports: the platform
// agent release whose protocol it speaks.
const ProtocolVersion = "2.15.0.1"

// Status is the aggregate status of the VM's extensions (§13.2), the
// document uploaded to the status blob.
func (m *Manager) Status(info AgentInfo) ([]byte, error) {
	now := m.Now().UTC().Format(timeLayout)
	m.mu.Lock()
	gs, result := m.current, m.state.Result
	handlers := make(map[string]HandlerStatus, len(m.state.Handlers))
	for k, v := range m.state.Handlers {
		handlers[k] = v
	}
	m.mu.Unlock()

	doc := vmStatus{
		Version:      "1.1",
		TimestampUTC: now,
		GuestOSInfo:  guestOSInfo{info.ComputerName, info.OSName, info.OSVersion, ProtocolVersion},
	}
	doc.Aggregate.GuestAgent = guestAgentStatus{
		Version: ProtocolVersion, Status: statusReady,
		Message: message{"en-US", "Guest Agent is running (azinit " + info.Version + ")"},
	}
	doc.Aggregate.Handlers = []handlerEntry{}
	if gs != nil {
		for i := range gs.Handlers {
			h := &gs.Handlers[i]
			if hs, ok := handlers[h.Name]; ok {
				doc.Aggregate.Handlers = append(doc.Aggregate.Handlers, m.handlerEntries(h, hs, now)...)
			}
		}
	}
	if result != nil {
		doc.Aggregate.Artifacts = &vmArtifacts{goalStateStatus{
			Message: message{"en-US", result.Message}, TimestampUTC: result.Time,
			InSvdSeqNo: result.InSvdSeqNo, Status: result.Status, Code: result.Code,
		}}
	}
	doc.Features = []feature{{"MultipleExtensionsPerHandler", "1.0"}}
	if info.FastTrack {
		doc.Features = append(doc.Features, feature{"FastTrack", "1.0"})
	}
	return json.Marshal(doc)
}

// handlerEntries are a handler's entries: one per extension, or the bare
// handler entry when it has no extension status.
func (m *Manager) handlerEntries(h *extconfig.Handler, hs HandlerStatus, now string) []handlerEntry {
	dir := m.Layout.Dir(h.Name, hs.Version)
	base := handlerEntry{
		HandlerVersion: hs.Version, HandlerName: h.Name, Status: hs.Status, Code: hs.Code,
		UseExactVersion: true, Message: &message{"en-US", redactSAS(hs.Message)},
	}
	if m.readState(dir) == enabled {
		m.applyHeartbeat(&base, dir)
	}
	items := plan(&extconfig.ExtensionsGoalState{Handlers: []extconfig.Handler{*h}})
	var entries []handlerEntry
	for _, it := range items {
		if it.settings == nil {
			continue
		}
		ext := it.ext()
		if ext != "" && it.settings.State == extconfig.StateDisabled && !m.extensionEnabled(dir, ext) {
			continue
		}
		st, err := m.readStatus(hs.Version, it)
		var es *extStatus
		switch {
		case err != nil:
			es = &extStatus{Status: string(extconfig.StatusError), Code: CodeStatusInvalid,
				Message: message{"en-US", "Could not get a valid status from the extension: " + err.Error()}}
		case st != nil:
			es = fromFile(st)
		case hs.Status == statusNotReady && hs.Code != 0:
			es = &extStatus{Status: string(extconfig.StatusError), Code: hs.Code, Message: message{"en-US", hs.Message}}
		case hs.Status == statusReady:
			es = &extStatus{Status: string(extconfig.StatusTransitioning), Operation: "Enable",
				Message: message{"en-US", "This status is being reported by the Guest Agent since no status file was reported by extension " + it.settings.Name}}
		default:
			continue
		}
		es.Name = it.settings.Name
		es.Message.Message = redactSAS(es.Message.Message)
		for i := range es.Substatus {
			es.Substatus[i].Message.Message = redactSAS(es.Substatus[i].Message.Message)
		}
		e := base
		e.Settings = &runtimeSettingsStatus{
			Status:         settingsStatus{Status: *es, Version: json.RawMessage("1.0"), TimestampUTC: now},
			SequenceNumber: it.settings.SeqNo,
			ExtensionName:  ext,
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return []handlerEntry{base}
	}
	return entries
}

// heartbeatStale is how old a heartbeat may be before the handler is
// reported unresponsive.
const heartbeatStale = 600 * time.Second

// applyHeartbeat lets a handler that reports a heartbeat speak for
// itself (§17.6).
func (m *Manager) applyHeartbeat(e *handlerEntry, dir string) {
	hm, err := m.loadManifest(dir)
	if err != nil || !hm.ReportHeartbeat {
		return
	}
	file := path.Join(dir, heartbeatFile)
	st, err := m.Root.Stat(file)
	if err != nil {
		return
	}
	if m.Now().Sub(st.ModTime()) > heartbeatStale {
		e.Status, e.Code, e.Message = "Unresponsive", CodeUnknown, &message{"en-US", "Extension heartbeat is not responsive"}
		return
	}
	b, err := m.Root.ReadFile(file)
	if err != nil {
		return
	}
	hb, err := extconfig.ParseHeartbeat(b)
	if err != nil {
		m.Log.Warn("ignoring a malformed heartbeat", "file", file, "error", err)
		return
	}
	e.Status, e.Code = hb.Status, hb.Code
	if hb.HasMessage {
		e.Message = &message{"en-US", redactSAS(hb.Message)}
	}
}

func fromFile(st *extconfig.Status) *extStatus {
	es := &extStatus{
		Operation: st.Operation, Status: string(st.Status), Code: st.Code,
		Message: message{"en-US", st.Message},
	}
	if st.ConfigurationAppliedTime != "" {
		es.AppliedTime = &st.ConfigurationAppliedTime
	}
	for _, s := range st.Substatus {
		es.Substatus = append(es.Substatus, substatus{s.Name, string(s.Status), s.Code, message{"en-US", s.Message}})
	}
	return es
}

// sasParam matches the values of SAS token parameters in a URL.
var sasParam = regexp.MustCompile(`([?&](?:sv|st|se|sr|sp|sip|spr|sig)=)[^&\s"']*`)

// redactSAS hides SAS tokens a message may quote.
func redactSAS(s string) string { return sasParam.ReplaceAllString(s, "${1}<redacted>") }

// The aggregate status document, in the platform agent's field order.
type (
	vmStatus struct {
		Version      string `json:"version"`
		TimestampUTC string `json:"timestampUTC"`
		Aggregate    struct {
			GuestAgent guestAgentStatus `json:"guestAgentStatus"`
			Handlers   []handlerEntry   `json:"handlerAggregateStatus"`
			Artifacts  *vmArtifacts     `json:"vmArtifactsAggregateStatus,omitempty"`
		} `json:"aggregateStatus"`
		GuestOSInfo guestOSInfo `json:"guestOSInfo"`
		Features    []feature   `json:"supportedFeatures,omitempty"`
	}
	guestAgentStatus struct {
		Version string  `json:"version"`
		Status  string  `json:"status"`
		Message message `json:"formattedMessage"`
	}
	message struct {
		Lang    string `json:"lang"`
		Message string `json:"message"`
	}
	handlerEntry struct {
		HandlerVersion  string                 `json:"handlerVersion"`
		HandlerName     string                 `json:"handlerName"`
		Status          string                 `json:"status"`
		Code            int                    `json:"code"`
		UseExactVersion bool                   `json:"useExactVersion"`
		Message         *message               `json:"formattedMessage,omitempty"`
		Settings        *runtimeSettingsStatus `json:"runtimeSettingsStatus,omitempty"`
	}
	runtimeSettingsStatus struct {
		Status         settingsStatus `json:"settingsStatus"`
		SequenceNumber int            `json:"sequenceNumber"`
		ExtensionName  string         `json:"extensionName,omitempty"`
	}
	settingsStatus struct {
		Status       extStatus       `json:"status"`
		Version      json.RawMessage `json:"version"`
		TimestampUTC string          `json:"timestampUTC"`
	}
	extStatus struct {
		Name        string      `json:"name"`
		AppliedTime *string     `json:"configurationAppliedTime"`
		Operation   string      `json:"operation"`
		Status      string      `json:"status"`
		Code        int         `json:"code"`
		Message     message     `json:"formattedMessage"`
		Substatus   []substatus `json:"substatus,omitempty"`
	}
	substatus struct {
		Name    string  `json:"name"`
		Status  string  `json:"status"`
		Code    int     `json:"code"`
		Message message `json:"formattedMessage"`
	}
	vmArtifacts struct {
		GoalState goalStateStatus `json:"goalStateAggregateStatus"`
	}
	goalStateStatus struct {
		Message      message `json:"formattedMessage"`
		TimestampUTC string  `json:"timestampUTC"`
		InSvdSeqNo   string  `json:"inSvdSeqNo"`
		Status       string  `json:"status"`
		Code         int     `json:"code"`
	}
	guestOSInfo struct {
		ComputerName string `json:"computerName"`
		OSName       string `json:"osName"`
		OSVersion    string `json:"osVersion"`
		Version      string `json:"version"`
	}
	feature struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	}
)
