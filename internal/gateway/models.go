package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"time"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/poll"
	"github.com/stewardhq/steward/internal/steward"
)

// Model cards. A configured model's card is made at start; its
// capabilities are the config file's, over those the default upstream's
// own model list gives the model (read at start and every
// RefreshCapabilities interval), else those of its endpoints. The
// fine-tuned models of the caller's Workspace are the upstream's cards,
// listed and read through it.

// upstreamCards are the capabilities of the models of the default
// upstream's list, by id and by alias.
type upstreamCards map[string]map[string]bool

// capabilitiesTimeout bounds a reading of the upstream's model list;
// CapabilitiesInterval is how often the server reads it.
const (
	capabilitiesTimeout  = 30 * time.Second
	CapabilitiesInterval = 10 * time.Minute
)

// RefreshCapabilities reads the default upstream's model list now and
// then every interval until ctx ends, so that the model cards take the
// upstream's capabilities; a failure is logged, and the cards keep what
// they had. It returns at once without a default upstream.
func (g *Gateway) RefreshCapabilities(ctx context.Context, every time.Duration) {
	if g.upstream == nil {
		return
	}
	poll.New(0).Run(ctx, every, func() bool {
		if err := g.readCapabilities(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("reading the capabilities of the upstream's models failed; the model cards keep theirs",
				"upstream", g.upstreamName, "err", err.Error())
		}
		return false
	})
}

// readCapabilities reads the default upstream's model list into the
// cards' capabilities.
func (g *Gateway) readCapabilities(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, capabilitiesTimeout)
	defer cancel()
	var list struct {
		Data []struct {
			ID           string          `json:"id"`
			Aliases      []string        `json:"aliases"`
			Capabilities map[string]bool `json:"capabilities"`
		} `json:"data"`
	}
	if err := g.upstreamList(ctx, steward.RandomID(), &list); err != nil {
		return err
	}
	cards := upstreamCards{}
	for _, m := range list.Data {
		if m.Capabilities == nil {
			continue
		}
		for _, name := range append([]string{m.ID}, m.Aliases...) {
			if _, ok := cards[name]; !ok && name != "" {
				cards[name] = m.Capabilities
			}
		}
	}
	g.upstreamCaps.Store(&cards)
	all := g.modelList(g.names)
	g.list.Store(&all)
	return nil
}

// upstreamList reads the default upstream's model list (at most
// maxAnswerBytes) into v.
func (g *Gateway) upstreamList(ctx context.Context, requestID string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.upstream.BaseURL+"/models", nil)
	if err != nil {
		return err
	}
	g.upstream.authorize(req, requestID)
	resp, err := g.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the upstream answered %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBytes)).Decode(v); err != nil {
		return fmt.Errorf("the upstream's model list could not be read: %w", err)
	}
	return nil
}

// modelList is the answer to GET /v1/models listing the models names:
// Mistral's ModelList of their cards.
func (g *Gateway) modelList(names []string) []byte {
	list := struct {
		Object string `json:"object"`
		Data   []card `json:"data"`
	}{Object: "list", Data: []card{}}
	for _, n := range names {
		list.Data = append(list.Data, g.cardOf(g.models[n]))
	}
	b, _ := json.Marshal(list)
	return b
}

// cardOf is m's card, created when the gateway started, with the
// upstream's capabilities of the model (by its name or an alias) under
// the config file's.
func (g *Gateway) cardOf(m *model) card {
	c := m.card
	c.Created = g.created
	up := g.upstreamCaps.Load()
	if up == nil || m.demo {
		return c
	}
	for _, name := range append([]string{m.name}, m.card.Aliases...) {
		theirs, ok := (*up)[name]
		if !ok {
			continue
		}
		c.Capabilities = make(map[string]bool, len(capabilityNames))
		for _, n := range capabilityNames {
			c.Capabilities[n] = theirs[n]
		}
		maps.Copy(c.Capabilities, m.configured)
		break
	}
	return c
}

// handleModels answers GET /v1/models with the model list: the models the
// key may call, and the fine-tuned models of its Workspace.
func (g *Gateway) handleModels(w http.ResponseWriter, r *http.Request) {
	x := g.exchange(w, r)
	if !x.admit(g.auth.WorkspaceKey(r)) {
		return
	}
	list := g.listFor(x.key)
	if tuned := g.tunedModels(&x); len(tuned) > 0 {
		var l struct {
			Object string            `json:"object"`
			Data   []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(list, &l); err != nil {
			x.fail(err)
			return
		}
		l.Data = append(l.Data, tuned...)
		b, err := json.Marshal(l)
		if err != nil {
			x.fail(err)
			return
		}
		list = b
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(list)
}

// handleModel answers GET /v1/models/{model_id} with the model's card, a
// model named by an alias too, or, for a fine-tuned model of the caller's
// Workspace, the upstream's card of it; a model the key may not call, or
// another Workspace's, is answered as one that does not exist.
func (g *Gateway) handleModel(w http.ResponseWriter, r *http.Request) {
	x := g.exchange(w, r)
	if !x.admit(g.auth.WorkspaceKey(r)) {
		return
	}
	id := r.PathValue("model_id")
	if m := g.models[id]; m != nil {
		if x.key.MayUse(m.name) {
			apierror.WriteJSON(w, http.StatusOK, g.cardOf(m))
			return
		}
	} else if x.key.MayUse(id) {
		mine, err := x.ownedBy(inference.ObjectFineTunedModel, id)
		if err != nil {
			x.fail(err)
			return
		}
		if mine {
			g.forward(&x, op{group: GroupFineTunedModels})
			return
		}
	}
	x.fail(&steward.Error{Kind: steward.KindNotFound, Field: []string{"path", "model_id"}, Code: "model_not_found", Message: fmt.Sprintf("model %q does not exist", id)})
}

// listFor is the answer to GET /v1/models for p: the models p may use.
func (g *Gateway) listFor(p steward.Principal) []byte {
	if p.Models == nil {
		return *g.list.Load()
	}
	names := make([]string, 0, len(g.names))
	for _, n := range g.names {
		if p.MayUse(n) {
			names = append(names, n)
		}
	}
	return g.modelList(names)
}

// tunedModels are the cards of the upstream's list that are fine-tuned
// models of the caller's Workspace the key may call. The upstream is asked
// only when the Workspace has some; when it cannot be, the failure is
// logged and the list holds the configured models alone.
func (g *Gateway) tunedModels(x *exchange) []json.RawMessage {
	if g.upstream == nil || g.objects == nil {
		return nil
	}
	ctx := x.r.Context()
	n, err := g.objects.Count(ctx, x.key.OrganizationID, x.key.WorkspaceID, inference.ObjectFineTunedModel)
	if err == nil && n == 0 {
		return nil
	}
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, g.timeouts[GroupFineTunedModels].Header)
		defer cancel()
		err = g.upstreamList(ctx, x.id, &list)
	}
	ids := make([]string, len(list.Data))
	for i, raw := range list.Data {
		var c struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &c) == nil && c.Type == "fine-tuned" && x.key.MayUse(c.ID) {
			ids[i] = c.ID
		}
	}
	var owned map[string]bool
	if err == nil {
		owned, err = g.objects.Owned(ctx, x.key.OrganizationID, x.key.WorkspaceID, inference.ObjectFineTunedModel, ids)
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			x.logAttrs(ctx, slog.LevelWarn, "listing the Workspace's fine-tuned models failed; the list holds the configured models", slog.String("err", err.Error()))
		}
		return nil
	}
	var out []json.RawMessage
	for i, raw := range list.Data {
		if ids[i] != "" && owned[ids[i]] {
			out = append(out, raw)
		}
	}
	return out
}
