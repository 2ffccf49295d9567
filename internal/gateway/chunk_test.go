package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// chunkSeeds are stream events as Mistral, OpenAI and vLLM send them, and
// inputs at the edges of what readChunk decodes itself.
var chunkSeeds = []string{
	`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
	`{"id":"x","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"token "},"finish_reason":null,"logprobs":null}]}`,
	`{"id":"x","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"total_tokens":30,"completion_tokens":18}}`,
	`{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":18,"total_tokens":30}}`,
	`{"choices":[{"index":1,"delta":{"tool_calls":[{"id":"t","function":{"name":"f","arguments":"{\"a\": 1}"}}]}}]}`,
	`{"choices":[{"index":0,"text":"def f():\n\treturn \"\u00e9\"","finish_reason":null}]}`,
	`{"choices":[{"index":0,"delta":{"content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":"u"}]}}]}`,
	`{"choices":[{"index":0,"message":{"content":"whole"},"finish_reason":"length"}]}`,
	`{"type":"transcription.text.delta","text":"bonjour"}`,
	`{"usage":{"prompt_audio_seconds":12,"prompt_tokens":4}}`,
	` { "choices" : [ null , { "index" : -3 , "finish_reason" : "st\u006fp" } ] } `,
	`{"Choices":[{"index":0,"delta":{"content":"case"}}]}`,
	`{"choices":[{"INDEX":2}]}`,
	`{"choices":[{"index":0}],"choices":[{"index":1}]}`,
	`{"choices":[{"delta":{"content":"a"},"delta":{"tool_calls":[]}}]}`,
	`{"ch\u006fices":[{"index":5}]}`,
	`{"choices":[{"index":1.0}]}`,
	`{"choices":[{"index":99999999999999999999}]}`,
	`{"choices":[{"index":"0"}]}`,
	`{"choices":{}}`,
	`{"usage":[]}`,
	`{"choices":[{"index":0,"delta":"text"}]}`,
	`{"choices":[{"finish_reason":7}]}`,
	`{"choices":[{"index":0}]} x`,
	`{"choices":[{"index":0},]}`,
	`{"a":[1,2,{"b":[true,false,null,-0.5e+3]}],"choices":null,"usage":null}`,
	`{"a":"\x01"}`,
	`{"a":"\ud800"}`,
	`{"a":"` + "\xff\xfe" + `","choices":[{"delta":{"content":"` + "\xff" + `"}}]}`,
	`null`,
	`[]`,
	`"text"`,
	`12`,
	``,
	`{`,
	`{"a":01}`,
	`{"a":1.}`,
	`{"a":-}`,
	`{"a":tru}`,
	`{"a" 1}`,
	`{"a":"\q"}`,
	`{"a":"\u12"}`,
	`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
}

// chunkSummary is what the gateway uses of a decoded chunk.
func chunkSummary(ok bool, c *wireAnswer) string {
	if !ok {
		return "not decoded"
	}
	s := fmt.Sprintf("output %d", c.outputBytes())
	if c.Usage != nil {
		s += fmt.Sprintf(" usage %v", c.Usage.reported())
		if c.Usage.reported() {
			o := c.Usage.outcome()
			s += fmt.Sprintf(" %d/%d/%ds", o.in, o.out, o.seconds)
		}
	}
	s += fmt.Sprintf(", %d choices:", len(c.Choices))
	for _, ch := range c.Choices {
		finish := "-"
		if ch.FinishReason != nil {
			finish = *ch.FinishReason
		}
		s += fmt.Sprintf(" [%d %q %d]", ch.Index, finish, ch.outputBytes())
	}
	return s
}

// FuzzReadChunk checks that readChunk decodes every input as
// json.Unmarshal does, as far as the gateway reads it.
func FuzzReadChunk(f *testing.F) {
	for _, s := range chunkSeeds {
		f.Add([]byte(s))
	}
	var reused wireAnswer
	f.Fuzz(func(t *testing.T, data []byte) {
		var want wireAnswer
		wantOK := json.Unmarshal(data, &want) == nil
		gotOK := readChunk(data, &reused)
		if got, want := chunkSummary(gotOK, &reused), chunkSummary(wantOK, &want); got != want {
			t.Errorf("readChunk(%q) = %s; json.Unmarshal: %s", data, got, want)
		}
	})
}

// TestReadChunkDecodesMostChunksItself checks that the events streams
// carry are read without json.Unmarshal, which would make the scanner
// pointless while FuzzReadChunk still passed.
func TestReadChunkDecodesMostChunksItself(t *testing.T) {
	for _, data := range chunkSeeds[:11] {
		var c wireAnswer
		s := chunkScanner{b: []byte(data)}
		if !s.answer(&c) || s.unsure {
			t.Errorf("%s: decoded %v, unsure %v; want decoded by the scanner", data, !s.unsure, s.unsure)
		}
	}
}

func BenchmarkReadChunk(b *testing.B) {
	data := []byte(`{"id":"cmpl-e5cc70bb28c444948073e77776eb30ef","object":"chat.completion.chunk","created":1702256327,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"content":"token "},"finish_reason":null}]}`)
	b.Run("scanner", func(b *testing.B) {
		var c wireAnswer
		for b.Loop() {
			if !readChunk(data, &c) || c.outputBytes() != 6 {
				b.Fatal("not read")
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		for b.Loop() {
			var c wireAnswer
			if json.Unmarshal(data, &c) != nil || c.outputBytes() != 6 {
				b.Fatal("not read")
			}
		}
	})
}
