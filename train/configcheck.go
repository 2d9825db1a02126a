package train

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Checks of a configuration's YAML that the strict decoder does not make.

// checkDuplicateKeys refuses a mapping that names a key twice (the YAML decoder into nodes keeps
// both, and the second would silently win).
func checkDuplicateKeys(n *yaml.Node, prefix string) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if err := checkDuplicateKeys(c, prefix); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if line, dup := seen[k.Value]; dup {
				return fmt.Errorf("key %s%s appears twice (lines %d and %d)", prefix, k.Value, line, k.Line)
			}
			seen[k.Value] = k.Line
			if err := checkDuplicateKeys(n.Content[i+1], prefix+k.Value+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkIntegers refuses a fractional number (3.5) given for an integer field, which the decoder
// would truncate. root is the merged configuration document's mapping.
func checkIntegers(root *yaml.Node) error {
	return walkInts(root, reflect.TypeOf(Config{}), "")
}

func walkInts(n *yaml.Node, t reflect.Type, prefix string) error {
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		f, ok := fieldByTag(t, key)
		if !ok {
			continue // unknown keys are the strict decoder's to report
		}
		switch f.Type.Kind() {
		case reflect.Struct:
			if err := walkInts(val, f.Type, prefix+key+"."); err != nil {
				return err
			}
		case reflect.Int, reflect.Int64:
			if val.Kind == yaml.ScalarNode && val.Tag != "!!int" && val.Value != "" {
				x, err := strconv.ParseFloat(val.Value, 64)
				if err == nil && x != math.Trunc(x) {
					return fmt.Errorf("config field %s%s: want a whole number, got %s", prefix, key, val.Value)
				}
			}
		}
	}
	return nil
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
