package gateway

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Timeouts bound the upstream call of a forwarded operation. Neither
// bounds the whole call, so that a long stream or download is never cut
// while it flows.
type Timeouts struct {
	// Header bounds the wait for the answer's headers, from the moment
	// the request (its body included) has been sent.
	Header time.Duration
	// Idle bounds a gap in the answer's body.
	Idle time.Duration
}

// Groups of forwarded operations, each with its own timeouts.
const (
	GroupFiles           = "files"
	GroupBatchJobs       = "batch_jobs"
	GroupAgents          = "agents"
	GroupConversations   = "conversations"
	GroupLibraries       = "libraries"
	GroupVoices          = "voices"
	GroupFineTunedModels = "fine_tuned_models"
)

// DefaultTimeouts are the timeouts of each group of forwarded operations.
// Reading and changing objects is quick; an upload is answered once the
// upstream has stored it (a library's document, a voice's sample), after
// its body has been sent, which no timeout bounds.
var DefaultTimeouts = map[string]Timeouts{
	GroupFiles:           {Header: 2 * time.Minute, Idle: time.Minute},
	GroupBatchJobs:       {Header: 30 * time.Second, Idle: 30 * time.Second},
	GroupAgents:          {Header: 30 * time.Second, Idle: 30 * time.Second},
	GroupConversations:   {Header: 30 * time.Second, Idle: 30 * time.Second},
	GroupLibraries:       {Header: 2 * time.Minute, Idle: time.Minute},
	GroupVoices:          {Header: 2 * time.Minute, Idle: time.Minute},
	GroupFineTunedModels: {Header: 30 * time.Second, Idle: 30 * time.Second},
}

// defaultUpstream validates the default upstream and the timeouts of cfg
// into g.
func (g *Gateway) defaultUpstream(cfg Config) error {
	g.timeouts = maps.Clone(DefaultTimeouts)
	for _, group := range slices.Sorted(maps.Keys(cfg.Timeouts)) {
		t := cfg.Timeouts[group]
		def, known := g.timeouts[group]
		switch {
		case !known:
			return fmt.Errorf("gateway: timeouts: unknown group %q: want one of %s", group, strings.Join(slices.Sorted(maps.Keys(DefaultTimeouts)), ", "))
		case t.Header < 0 || t.Idle < 0:
			return fmt.Errorf("gateway: timeouts of %s must be positive", group)
		}
		if t.Header > 0 {
			def.Header = t.Header
		}
		if t.Idle > 0 {
			def.Idle = t.Idle
		}
		g.timeouts[group] = def
	}
	if cfg.Upstream == nil {
		return nil
	}
	u := cfg.Upstream
	p, err := url.Parse(u.BaseURL)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
		return fmt.Errorf("gateway: the default upstream's base URL %q must be an absolute http or https URL without query or fragment", u.BaseURL)
	}
	g.upstream = &Upstream{BaseURL: strings.TrimRight(u.BaseURL, "/"), APIKey: u.APIKey}
	g.upstreamName = strings.TrimRight(p.Redacted(), "/")
	return nil
}
