package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
)

// encoding/json matches object keys to fields case-insensitively and lets the
// last of two equal keys win, so {"EMAIL":…} fills Email and
// {"customer_id":"a","customer_id":"b"} reads as "b": a proxy or a signature
// check that reads the first key (or matches exactly) would then see another
// request than the gateway. exactKeys closes that gap after a successful
// decode: every key must be spelled exactly as a field of the target type,
// and no object may repeat a key.

// fieldNames returns the JSON names of t's fields and of the structs under
// it (through pointers, slices and arrays), cached per type.
func fieldNames(t reflect.Type) map[string]bool {
	if m, ok := fieldNameCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	collectFieldNames(t, m, map[reflect.Type]bool{})
	fieldNameCache.Store(t, m)
	return m
}

var fieldNameCache sync.Map // reflect.Type -> map[string]bool

func collectFieldNames(t reflect.Type, into map[string]bool, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		into[name] = true
		collectFieldNames(f.Type, into, seen)
	}
}

// exactKeys walks body, which decoded into v without error (so it is one
// valid JSON value), and refuses a key not spelled as one of v's fields (400
// unknown_field naming it, with the field it was taken for) or repeated
// within its object (400 duplicate_field). A key in the wrong object is left
// to the decoder's DisallowUnknownFields, which has already refused it. It
// scans the bytes rather than using json.Decoder.Token, which allocates per
// token (BenchmarkExactKeys).
func exactKeys(body []byte, v any) *Error {
	known := fieldNames(reflect.TypeOf(v))
	type frame struct {
		object bool
		start  int // where this object's keys start in seen
	}
	var framesBuf [8]frame
	var seenBuf [16][]byte
	frames, seen := framesBuf[:0], seenBuf[:0]
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			frames = append(frames, frame{object: true, start: len(seen)})
			expectKey = true
		case '[':
			frames = append(frames, frame{start: len(seen)})
			expectKey = false
		case '}', ']':
			seen = seen[:frames[len(frames)-1].start]
			frames = frames[:len(frames)-1]
			expectKey = false
		case ',':
			expectKey = len(frames) > 0 && frames[len(frames)-1].object
		case '"':
			end := i + 1
			for ; end < len(body) && body[end] != '"'; end++ {
				if body[end] == '\\' {
					end++
				}
			}
			if expectKey {
				key := body[i+1 : end]
				if bytes.IndexByte(key, '\\') >= 0 {
					var k string
					_ = json.Unmarshal(body[i:end+1], &k)
					key = []byte(k)
				}
				if !known[string(key)] {
					return unknownKey(string(key), known)
				}
				for _, k := range seen[frames[len(frames)-1].start:] {
					if bytes.Equal(k, key) {
						return newError(http.StatusBadRequest, "duplicate_field", "field "+string(key)+" is given more than once",
							Detail{Field: string(key), Issue: "given more than once"})
					}
				}
				seen = append(seen, key)
				expectKey = false
			}
			i = end
		}
	}
	return nil
}

func unknownKey(key string, known map[string]bool) *Error {
	issue := "not allowed"
	for name := range known {
		if strings.EqualFold(name, key) {
			issue = `not allowed: field names are case-sensitive; did you mean "` + name + `"?`
			break
		}
	}
	return newError(http.StatusBadRequest, "unknown_field", "unknown field "+key, Detail{Field: key, Issue: issue})
}
