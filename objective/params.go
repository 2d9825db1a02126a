package objective

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Typed parameters: a preset's configuration is a struct whose fields carry `param:"name"` tags (and
// `choices:"a|b"` for a closed set of strings; `format:"exp"` writes a float's default with a compact
// exponent, 1e3); its value at registration holds the defaults. Text
// values (--set k=v, algo.set) decode into a copy of it with the same errors as every preset.

// RegisterTyped adds a named preset whose parameters are the tagged fields of C, with the defaults in
// defaults; build gets the decoded, typed configuration.
func RegisterTyped[C any](name, summary string, defaults C, build func(C) (Objective, error)) {
	Register(name, summary, encodeParams(defaults), func(p Params) (Objective, error) {
		c := defaults
		if err := decodeParams(&c, p); err != nil {
			return nil, err
		}
		return build(c)
	})
}

// RegisterPairTyped is RegisterTyped for preference losses.
func RegisterPairTyped[C any](name, summary string, defaults C, build func(C) (PairObjective, error)) {
	RegisterPair(name, summary, encodeParams(defaults), func(p Params) (PairObjective, error) {
		c := defaults
		if err := decodeParams(&c, p); err != nil {
			return nil, err
		}
		return build(c)
	})
}

// paramFields visits the tagged fields of the struct v points to (embedded structs included).
func paramFields(v reflect.Value, visit func(name string, tag reflect.StructTag, f reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		sf, f := t.Field(i), v.Field(i)
		name := sf.Tag.Get("param")
		if name == "" && f.Kind() == reflect.Struct && sf.IsExported() {
			paramFields(f, visit) // a group of parameters (embedded or named)
			continue
		}
		if name != "" {
			visit(name, sf.Tag, f)
		}
	}
}

// encodeParams renders every tagged field as text: the preset's defaults for --list and the registry.
func encodeParams(c any) Params {
	p := Params{}
	paramFields(reflect.ValueOf(&c).Elem().Elem(), func(name string, tag reflect.StructTag, f reflect.Value) {
		switch f.Kind() {
		case reflect.Float64:
			if tag.Get("format") == "exp" {
				p[name] = formatExp(f.Float())
			} else {
				p[name] = formatFloat(f.Float())
			}
		case reflect.Int:
			p[name] = strconv.Itoa(int(f.Int()))
		case reflect.Uint64:
			p[name] = strconv.FormatUint(f.Uint(), 10)
		case reflect.Bool:
			p[name] = strconv.FormatBool(f.Bool())
		case reflect.String:
			p[name] = f.String()
		default:
			panic(fmt.Sprintf("objective: parameter %s has unsupported kind %s", name, f.Kind()))
		}
	})
	return p
}

// decodeParams sets the tagged fields of *dst from p (every name present in p), with the messages of
// the text reader: "parameter eps_low="abc": want a number".
func decodeParams(dst any, p Params) error {
	r := &reader{p: p}
	paramFields(reflect.ValueOf(dst).Elem(), func(name string, tag reflect.StructTag, f reflect.Value) {
		choices := tag.Get("choices")
		if _, ok := p[name]; !ok {
			return
		}
		switch f.Kind() {
		case reflect.Float64:
			f.SetFloat(r.float(name))
		case reflect.Int:
			f.SetInt(int64(r.int(name)))
		case reflect.Uint64:
			f.SetUint(uint64(r.int(name)))
		case reflect.Bool:
			f.SetBool(r.bool(name))
		case reflect.String:
			if choices != "" {
				f.SetString(r.oneOf(name, strings.Split(choices, "|")...))
			} else {
				f.SetString(p[name])
			}
		}
	})
	return r.err
}

// formatFloat writes x as a parameter value: shortest decimal, except that small magnitudes (< 0.01)
// and those Go would write with an exponent use a compact exponent (1e-6, 3e-4, 1e7).
func formatFloat(x float64) string {
	s := strconv.FormatFloat(x, 'g', -1, 64)
	if a := math.Abs(x); (a == 0 || a >= 0.01) && !strings.ContainsAny(s, "eE") || math.IsInf(x, 0) || math.IsNaN(x) {
		return s
	}
	return formatExp(x)
}

// formatExp writes x with a compact exponent (1e3, 2.5e-4); values with exponent 0, zero and
// non-finite values as formatFloat would.
func formatExp(x float64) string {
	m, e, _ := strings.Cut(strconv.FormatFloat(x, 'e', -1, 64), "e")
	digits := strings.TrimLeft(e[1:], "0")
	if digits == "" || math.IsInf(x, 0) || math.IsNaN(x) {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	sign := ""
	if e[0] == '-' {
		sign = "-"
	}
	return m + "e" + sign + digits
}
