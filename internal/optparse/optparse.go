// Package optparse reads typed options out of a string map (the `options:` of a task or verifier in a
// config file, or --opt k=v flags): it remembers the first bad value and, at the end, reports keys that
// nothing asked for, so a typo is an error naming it instead of a silently ignored setting.
package optparse

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Parser reads options for one named thing; what prefixes every error (e.g. "task addition").
type Parser struct {
	what string
	raw  map[string]string
	used map[string]bool
	err  error
}

// New starts reading raw for what.
func New(what string, raw map[string]string) *Parser {
	return &Parser{what: what, raw: raw, used: map[string]bool{}}
}

// Get returns the trimmed value of key and whether it was given, and marks key as known.
func (p *Parser) Get(key string) (string, bool) {
	p.used[key] = true
	v, ok := p.raw[key]
	return strings.TrimSpace(v), ok
}

// Fail records an error (only the first one is kept).
func (p *Parser) Fail(format string, a ...any) {
	if p.err == nil {
		p.err = fmt.Errorf(p.what+": "+format, a...)
	}
}

// Err is the first recorded error, if any (before Finish checks for unknown keys).
func (p *Parser) Err() error { return p.err }

// Choice returns key's value, which must be one of allowed, or def when absent.
func (p *Parser) Choice(key, def string, allowed ...string) string {
	v, ok := p.Get(key)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.Fail("option %s=%q: choose one of %s", key, v, strings.Join(allowed, ", "))
	return def
}

// Bool returns key's value as a boolean, or def when absent.
func (p *Parser) Bool(key string, def bool) bool {
	v, ok := p.Get(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.Fail("option %s=%q: want true or false", key, v)
		return def
	}
	return b
}

// Finish returns the first recorded error, or an error naming the options that were given but never
// read, with the valid ones.
func (p *Parser) Finish() error {
	if p.err != nil {
		return p.err
	}
	var unknown, known []string
	for k := range p.raw {
		if !p.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	for k := range p.used {
		known = append(known, k)
	}
	sort.Strings(unknown)
	sort.Strings(known)
	return fmt.Errorf("%s: unknown option(s) %s; valid options: %s", p.what, strings.Join(unknown, ", "), strings.Join(known, ", "))
}
