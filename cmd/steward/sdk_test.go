package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/mistraltest"
)

// sdkDir holds the script that drives Steward with the official SDKs, and
// its lock file; `npm ci` there installs them (.ci/run does).
const sdkDir = "../../tests/sdk"

// TestOfficialSDKs runs Mistral's TypeScript SDK (@mistralai/mistralai)
// and OpenAI's (openai) against the real binary in front of a fake Mistral
// upstream, with nothing changed but the base URL and the key
// (tests/sdk/run.mjs): models, chat plain and streamed, embeddings, OCR,
// moderation, a file upload and list, a batch job, an agent and its
// completion, and a second Workspace's key seeing none of the first's
// objects.
func TestOfficialSDKs(t *testing.T) {
	node, err := exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join(sdkDir, "node_modules", "@mistralai", "mistralai")); err != nil || statErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node or the SDKs are missing (run npm ci in tests/sdk): %v %v", err, statErr)
		}
		t.Skip("the official SDKs are not installed: run `npm ci --prefix tests/sdk` (Node.js 20 or later)")
	}
	up := mistraltest.New(t)
	cfg := filepath.Join(t.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `models:
  - name: mistral-small-latest
    upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}]
    input_price_per_million: 0.1
    output_price_per_million: 0.3
    endpoints: [chat, embeddings, moderations, ocr, agents]
agent_model: mistral-small-latest
upstream:
  url: %[1]s
  api_key_env: FAKE_MISTRAL_KEY
`, up.BaseURL()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--config", cfg)
	cmd.Env = append(os.Environ(), "FAKE_MISTRAL_KEY="+up.Key)
	p := run(t, cmd)
	admin := adminKey.FindStringSubmatch(p.output)[1]
	_, key := p.workspaceKey(t, admin)
	other := p.otherWorkspaceKey(t, admin)

	script := exec.Command(node, "run.mjs")
	script.Dir = sdkDir
	script.Env = append(os.Environ(), "STEWARD_URL="+p.base, "STEWARD_KEY="+key, "STEWARD_OTHER_KEY="+other, "STEWARD_MODEL=mistral-small-latest")
	out, err := script.CombinedOutput()
	if err != nil || strings.Contains(string(out), "FAIL") || !strings.Contains(string(out), "ok openai embeddings.create") {
		t.Fatalf("the SDKs' script: %v\n%s", err, out)
	}
}
