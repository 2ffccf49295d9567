package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// runCompletion prints a completion script for bash or zsh: commands,
// their verbs, and each verb's flags, all taken from the command tables.
func runCompletion(_ context.Context, env Env, args []string) error {
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh") {
		w, err := env.Stderr, errUsage
		if len(args) == 1 && isHelp(args[0]) {
			w, err = env.Stdout, flag.ErrHelp
		}
		fmt.Fprintln(w, "usage: steward completion bash|zsh\n\nbash: source <(steward completion bash), or save it in /etc/bash_completion.d/steward\nzsh:  source <(steward completion zsh), or save it as _steward in a directory of $fpath")
		return err
	}
	words := completionWords(env)
	if args[0] == "bash" {
		return bashCompletion(env.Stdout, words)
	}
	return zshCompletion(env.Stdout, words)
}

// completionTree is what completes after each prefix of the command line:
// "" -> commands, "users" -> verbs, "users list" -> flags.
type completionTree map[string][]string

func completionWords(env Env) completionTree {
	t := completionTree{}
	for _, c := range commands() {
		t[""] = append(t[""], c.name)
	}
	t["audit"] = []string{"verify"}
	t["completion"] = []string{"bash", "zsh"}
	for _, c := range adminCommands() {
		t[c.noun] = append(t[c.noun], c.verb)
		a, err := newAdminCall(Env{Getenv: env.Getenv, Stdout: io.Discard, Stderr: io.Discard}, c)
		if err != nil {
			continue
		}
		if c.run != nil {
			// A command of its own registers its flags when it runs: run
			// it on -h to list them.
			_ = c.run(context.Background(), a, []string{"-h"})
		}
		a.fs.VisitAll(func(f *flag.Flag) { t[c.noun+" "+c.verb] = append(t[c.noun+" "+c.verb], "--"+f.Name) })
	}
	for _, c := range backofficeCommands() {
		t["backoffice"] = append(t["backoffice"], c.group)
		t["backoffice "+c.group] = append(t["backoffice "+c.group], c.verb)
	}
	for k, v := range t {
		t[k] = dedupe(v)
	}
	return t
}

func dedupe(words []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range words {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

func (t completionTree) keys() []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func bashCompletion(w io.Writer, t completionTree) error {
	var b strings.Builder
	b.WriteString("# bash completion for steward: source <(steward completion bash)\n_steward() {\n")
	b.WriteString("  local cur=${COMP_WORDS[COMP_CWORD]} prefix=\"\" i\n")
	b.WriteString("  for ((i = 1; i < COMP_CWORD && i < 3; i++)); do\n")
	b.WriteString("    case ${COMP_WORDS[i]} in -*) break ;; esac\n")
	b.WriteString("    prefix=\"${prefix:+$prefix }${COMP_WORDS[i]}\"\n  done\n")
	b.WriteString("  local words=\"\"\n  case \"$prefix\" in\n")
	for _, k := range t.keys() {
		fmt.Fprintf(&b, "    %q) words=%q ;;\n", k, strings.Join(t[k], " "))
	}
	b.WriteString("  esac\n  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -F _steward steward\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func zshCompletion(w io.Writer, t completionTree) error {
	var b strings.Builder
	b.WriteString("#compdef steward\n# zsh completion for steward: source <(steward completion zsh)\n_steward() {\n")
	b.WriteString("  local prefix=\"\" i\n  local -a words_\n")
	b.WriteString("  for ((i = 2; i < CURRENT && i < 4; i++)); do\n")
	b.WriteString("    [[ $words[i] == -* ]] && break\n")
	b.WriteString("    prefix=\"${prefix:+$prefix }$words[i]\"\n  done\n")
	b.WriteString("  case \"$prefix\" in\n")
	for _, k := range t.keys() {
		fmt.Fprintf(&b, "    %q) words_=(%s) ;;\n", k, strings.Join(t[k], " "))
	}
	b.WriteString("  esac\n  compadd -a words_\n}\ncompdef _steward steward\n")
	_, err := io.WriteString(w, b.String())
	return err
}
