package metrics

// TensorBoard event files, written without TensorFlow. The format (TensorFlow's
// core/lib/io/record_writer.cc and core/util/event.proto):
//
//	file   = record*
//	record = uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
//	masked_crc32c(b) = ((c >> 15) | (c << 17)) + 0xa282ead8, c = CRC-32C (Castagnoli) of b
//
// Each record's data is one serialized Event:
//
//	Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//	Summary { repeated Value value = 1; }
//	Value   { string tag = 1; float simple_value = 2; TensorProto tensor = 8; }
//
// The first event of a file carries file_version "brain.Event:2"; TensorBoard reads scalars from
// simple_value (and, from newer writers, from a scalar tensor, which ReadEvents also accepts).

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's checksum: CRC-32C rotated and offset so that a CRC of data that itself
// holds CRCs does not degenerate.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

// EventWriter appends scalar events to one TensorBoard event file. Every event is written straight
// to the file, so TensorBoard (and polo dash) see a live run and a killed run keeps its events.
type EventWriter struct {
	f    *os.File
	path string
}

// NewEventWriter creates dir and a new event file in it named as TensorBoard expects
// (events.out.tfevents.<unix seconds>.<host>.<pid>.<n>), and writes the file-version event.
func NewEventWriter(dir string) (*EventWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	now := time.Now()
	var f *os.File
	var path string
	for n := 0; ; n++ { // a second writer in the same second and process (a resume) gets the next n
		path = filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%d.%s.%d.%d", now.Unix(), host, os.Getpid(), n))
		var err error
		if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644); err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || n == 99 {
			return nil, fmt.Errorf("tensorboard: %w", err)
		}
	}
	w := &EventWriter{f: f, path: path}
	if err := w.write(Event{WallTime: unixSeconds(now), FileVersion: "brain.Event:2"}); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the event file's path.
func (w *EventWriter) Path() string { return w.path }

// WriteScalars writes one event holding every value (tags sorted so the file is reproducible).
// Values are stored as float32 simple_value, TensorBoard's scalar type.
func (w *EventWriter) WriteScalars(step int64, wallTime float64, values map[string]float64) error {
	ev := Event{WallTime: wallTime, Step: step}
	for tag, v := range values {
		ev.Values = append(ev.Values, Scalar{Tag: tag, Value: v})
	}
	sort.Slice(ev.Values, func(i, j int) bool { return ev.Values[i].Tag < ev.Values[j].Tag })
	return w.write(ev)
}

// Close closes the file.
func (w *EventWriter) Close() error { return w.f.Close() }

func (w *EventWriter) write(ev Event) error {
	if _, err := w.f.Write(frameRecord(encodeEvent(ev))); err != nil {
		return fmt.Errorf("tensorboard: %w", err)
	}
	return nil
}

// frameRecord wraps data in TFRecord framing.
func frameRecord(data []byte) []byte {
	out := make([]byte, 12, 16+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(data)))
	binary.LittleEndian.PutUint32(out[8:], maskedCRC(out[:8]))
	out = append(out, data...)
	return binary.LittleEndian.AppendUint32(out, maskedCRC(data))
}

// Event is one decoded TensorBoard event: the file-version header or a step's scalars.
type Event struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Values      []Scalar
}

// Scalar is one tagged value of an event's summary.
type Scalar struct {
	Tag   string
	Value float64
}

// Protobuf wire types used here.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

func appendTag(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wire))
}

func appendBytesField(b []byte, field int, v []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func encodeEvent(ev Event) []byte {
	var b []byte
	b = appendTag(b, 1, wireFixed64)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(ev.WallTime))
	if ev.Step != 0 {
		b = appendTag(b, 2, wireVarint)
		b = binary.AppendUvarint(b, uint64(ev.Step)) // int64: two's complement as uint64
	}
	if ev.FileVersion != "" {
		b = appendBytesField(b, 3, []byte(ev.FileVersion))
	}
	if len(ev.Values) > 0 {
		var sum []byte
		for _, s := range ev.Values {
			var val []byte
			val = appendBytesField(val, 1, []byte(s.Tag))
			val = appendTag(val, 2, wireFixed32)
			val = binary.LittleEndian.AppendUint32(val, math.Float32bits(float32(s.Value)))
			sum = appendBytesField(sum, 1, val)
		}
		b = appendBytesField(b, 5, sum)
	}
	return b
}

// ReadEventFile decodes every event of a TensorBoard event file (ReadEvents).
func ReadEventFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer f.Close()
	evs, err := ReadEvents(bufio.NewReader(f))
	if err != nil {
		return evs, fmt.Errorf("%s: %w", path, err)
	}
	return evs, nil
}

// ReadEvents decodes TFRecord-framed events, checking both CRCs of every record. A record cut short
// at the end (a writer killed mid-write) ends the list without error; a bad checksum is an error.
func ReadEvents(r io.Reader) ([]Event, error) {
	var out []Event
	var head [12]byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return out, nil
			}
			return out, err
		}
		if got, want := binary.LittleEndian.Uint32(head[8:]), maskedCRC(head[:8]); got != want {
			return out, fmt.Errorf("record %d: length checksum %08x, want %08x", n, got, want)
		}
		size := binary.LittleEndian.Uint64(head[:8])
		if size > 1<<30 {
			return out, fmt.Errorf("record %d: length %d is implausible", n, size)
		}
		data := make([]byte, size+4)
		if _, err := io.ReadFull(r, data); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return out, nil
			}
			return out, err
		}
		body := data[:size]
		if got, want := binary.LittleEndian.Uint32(data[size:]), maskedCRC(body); got != want {
			return out, fmt.Errorf("record %d: data checksum %08x, want %08x", n, got, want)
		}
		ev, err := decodeEvent(body)
		if err != nil {
			return out, fmt.Errorf("record %d: %w", n, err)
		}
		out = append(out, ev)
	}
}

// field is one decoded protobuf field: the number, the wire type and the value (num for varint and
// fixed types, raw for length-delimited ones).
type field struct {
	num   int
	wire  int
	num64 uint64
	raw   []byte
}

// fields splits a protobuf message into its fields.
func fields(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad field key")
		}
		b = b[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case wireVarint:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, errors.New("bad varint")
			}
			f.num64, b = v, b[n:]
		case wireFixed64:
			if len(b) < 8 {
				return nil, errors.New("short fixed64")
			}
			f.num64, b = binary.LittleEndian.Uint64(b), b[8:]
		case wireFixed32:
			if len(b) < 4 {
				return nil, errors.New("short fixed32")
			}
			f.num64, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		case wireBytes:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, errors.New("bad length-delimited field")
			}
			f.raw, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return nil, fmt.Errorf("unsupported wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out, nil
}

func decodeEvent(b []byte) (Event, error) {
	var ev Event
	fs, err := fields(b)
	if err != nil {
		return ev, fmt.Errorf("event: %w", err)
	}
	for _, f := range fs {
		switch {
		case f.num == 1 && f.wire == wireFixed64:
			ev.WallTime = math.Float64frombits(f.num64)
		case f.num == 2 && f.wire == wireVarint:
			ev.Step = int64(f.num64)
		case f.num == 3 && f.wire == wireBytes:
			ev.FileVersion = string(f.raw)
		case f.num == 5 && f.wire == wireBytes:
			vals, err := fields(f.raw)
			if err != nil {
				return ev, fmt.Errorf("summary: %w", err)
			}
			for _, v := range vals {
				if v.num != 1 || v.wire != wireBytes {
					continue
				}
				s, ok, err := decodeValue(v.raw)
				if err != nil {
					return ev, err
				}
				if ok {
					ev.Values = append(ev.Values, s)
				}
			}
		}
	}
	return ev, nil
}

// decodeValue reads a Summary.Value holding a scalar: simple_value, or a one-element float/double
// tensor (TensorProto: dtype = 1, tensor_content = 4, float_val = 5, double_val = 6). Other kinds
// (images, histograms) are skipped.
func decodeValue(b []byte) (Scalar, bool, error) {
	fs, err := fields(b)
	if err != nil {
		return Scalar{}, false, fmt.Errorf("summary value: %w", err)
	}
	var s Scalar
	found := false
	for _, f := range fs {
		switch {
		case f.num == 1 && f.wire == wireBytes:
			s.Tag = string(f.raw)
		case f.num == 2 && f.wire == wireFixed32:
			s.Value, found = float64(math.Float32frombits(uint32(f.num64))), true
		case f.num == 8 && f.wire == wireBytes:
			if v, ok, err := tensorScalar(f.raw); err != nil {
				return s, false, fmt.Errorf("tag %q: %w", s.Tag, err)
			} else if ok {
				s.Value, found = v, true
			}
		}
	}
	return s, found, nil
}

func tensorScalar(b []byte) (float64, bool, error) {
	fs, err := fields(b)
	if err != nil {
		return 0, false, fmt.Errorf("tensor: %w", err)
	}
	dtype := uint64(0)
	var content []byte
	var vals []float64
	for _, f := range fs {
		switch {
		case f.num == 1 && f.wire == wireVarint:
			dtype = f.num64
		case f.num == 4 && f.wire == wireBytes:
			content = f.raw
		case f.num == 5 && f.wire == wireFixed32:
			vals = append(vals, float64(math.Float32frombits(uint32(f.num64))))
		case f.num == 5 && f.wire == wireBytes: // packed
			for p := f.raw; len(p) >= 4; p = p[4:] {
				vals = append(vals, float64(math.Float32frombits(binary.LittleEndian.Uint32(p))))
			}
		case f.num == 6 && f.wire == wireFixed64:
			vals = append(vals, math.Float64frombits(f.num64))
		case f.num == 6 && f.wire == wireBytes:
			for p := f.raw; len(p) >= 8; p = p[8:] {
				vals = append(vals, math.Float64frombits(binary.LittleEndian.Uint64(p)))
			}
		}
	}
	switch {
	case len(vals) == 1:
		return vals[0], true, nil
	case dtype == 1 && len(content) == 4: // DT_FLOAT
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(content))), true, nil
	case dtype == 2 && len(content) == 8: // DT_DOUBLE
		return math.Float64frombits(binary.LittleEndian.Uint64(content)), true, nil
	}
	return 0, false, nil
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// KeepEvents rewrites every event file in dir with only the scalars keep accepts (by the phase
// of their "phase/name" tag and their step); events left empty are dropped. A resumed run calls
// it so that TensorBoard does not show the redone steps twice.
func KeepEvents(dir string, keep func(phase string, step int64) bool) error {
	paths, err := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	if err != nil {
		return err
	}
	for _, path := range paths {
		evs, err := ReadEventFile(path)
		if err != nil {
			return fmt.Errorf("tensorboard: %w", err)
		}
		var out []byte
		dropped := false
		for _, ev := range evs {
			vals := ev.Values[:0:0]
			for _, v := range ev.Values {
				phase, _, _ := strings.Cut(v.Tag, "/")
				if keep(phase, ev.Step) {
					vals = append(vals, v)
				}
			}
			if len(vals) != len(ev.Values) {
				dropped = true
				if len(vals) == 0 {
					continue
				}
			}
			ev.Values = vals
			out = append(out, frameRecord(encodeEvent(ev))...)
		}
		if !dropped {
			continue
		}
		if err := os.WriteFile(path+".tmp", out, 0o644); err != nil {
			return fmt.Errorf("tensorboard: %w", err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return fmt.Errorf("tensorboard: %w", err)
		}
	}
	return nil
}
