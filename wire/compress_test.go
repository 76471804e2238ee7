package wire

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"runtime"
	"testing"
)

// loop is a ReadWriter whose reads return what was written.
type loop struct{ bytes.Buffer }

func TestCompressedRoundTrip(t *testing.T) {
	for _, size := range []int{0, 10, 49, 50, 1000, 70000, MaxPayload + 10} {
		var l loop
		w := NewCompressed(&l, 1<<30, nil)
		payload := bytes.Repeat([]byte("switchyard "), size/11+1)[:size]
		if _, err := w.Write(payload); err != nil {
			t.Fatal(err)
		}
		r := NewCompressed(&l, 1<<30, nil)
		got, err := io.ReadAll(io.LimitReader(r, int64(size)))
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("size %d: got %d bytes, %v", size, len(got), err)
		}
	}
}

func TestCompressedFrameSequence(t *testing.T) {
	var l loop
	// A client command frame with sequence id 0, not compressed.
	l.Write([]byte{5, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 14})
	c := NewCompressed(&l, 1<<20, nil)
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	// The response continues the client's frame numbering.
	if _, err := c.Write([]byte{7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if h := l.Bytes(); h[3] != 1 {
		t.Fatalf("response frame sequence id %d, want 1", h[3])
	}
}

func TestCompressedRejectsHostileFrames(t *testing.T) {
	var l loop
	l.Write([]byte{0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff})
	if _, err := NewCompressed(&l, 1<<20, nil).Read(make([]byte, 10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	l.Reset()
	l.Write([]byte{3, 0, 0, 0, 100, 0, 0, 1, 2, 3})
	if _, err := NewCompressed(&l, 1<<20, nil).Read(make([]byte, 10)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad deflate data: %v", err)
	}
}

// FuzzCompressed reads arbitrary client bytes as compressed frames.
func FuzzCompressed(f *testing.F) {
	var l loop
	NewCompressed(&l, 1<<20, nil).Write(bytes.Repeat([]byte("select 1 from t where x = 'y'; "), 10))
	f.Add(l.Bytes())
	f.Add([]byte{5, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 14})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := NewCompressed(&loop{*bytes.NewBuffer(in)}, 1<<16, nil)
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
	})
}

// compressedFrame is one compressed frame of payload, declaring rawLen as
// its uncompressed length, with extra bytes after the deflate stream.
func compressedFrame(payload []byte, rawLen int, extra []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(payload)
	zw.Close()
	z.Write(extra)
	f := make([]byte, CompressedHeaderSize, CompressedHeaderSize+z.Len())
	PutHeader(f, z.Len(), 0)
	f[4], f[5], f[6] = byte(rawLen), byte(rawLen>>8), byte(rawLen>>16)
	return append(f, z.Bytes()...)
}

func TestCompressedFrameLengthChecked(t *testing.T) {
	payload := bytes.Repeat([]byte("+1"), 1000)
	for _, tc := range []struct {
		name   string
		rawLen int
	}{{"shorter than declared", len(payload) + 1}, {"longer than declared", len(payload) - 1}} {
		var l loop
		l.Write(compressedFrame(payload, tc.rawLen, nil))
		_, err := io.ReadAll(io.LimitReader(NewCompressed(&l, 1<<20, nil), int64(tc.rawLen)))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
	// Bytes after the deflate stream inside a frame are skipped: the next
	// frame is read from where it starts.
	var l loop
	l.Write(compressedFrame(payload, len(payload), []byte("junk")))
	l.Write([]byte{3, 0, 0, 1, 0, 0, 0, 'a', 'b', 'c'})
	got, err := io.ReadAll(NewCompressed(&l, 1<<20, nil))
	if err != nil || string(got) != string(payload)+"abc" {
		t.Fatalf("got %d bytes (%.10q...), %v", len(got), got, err)
	}
}

// TestCompressedReadDoesNotBufferFrames: a frame that inflates to 2 MB is
// read into the caller's buffer without a buffer of the frame on the way,
// compressed or not (what a 2 KB "SELECT 1+1+..." cost twice before).
func TestCompressedReadDoesNotBufferFrames(t *testing.T) {
	const size = 2 << 20
	payload := append([]byte("SELECT 1"), bytes.Repeat([]byte("+1"), (size-8)/2)...)
	var raw loop
	w := NewCompressed(&raw, 1<<24, nil)
	w.Write(payload) // compressed: about 2 KB
	if raw.Len() > 16<<10 {
		t.Fatalf("the payload compressed to %d bytes", raw.Len())
	}
	plain := append([]byte{0, 0, 0, 0, 0, 0, 0}, payload...)
	PutHeader(plain, len(payload), 0)
	dst := make([]byte, size)
	for _, tc := range []struct {
		name  string
		frame []byte
	}{{"compressed", raw.Bytes()}, {"uncompressed", plain}} {
		var l loop
		l.Write(tc.frame)
		r := NewCompressed(&l, 1<<24, nil)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := io.ReadFull(r, dst); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if !bytes.Equal(dst, payload) {
			t.Fatalf("%s: the payload came out different", tc.name)
		}
		// The inflater's state (its 32 KB window and tables) and a 4 KB
		// read buffer, allocated once per connection; the frame itself
		// would be 2 MB.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
			t.Errorf("%s: reading a %d-byte frame allocated %d bytes", tc.name, size, alloc)
		}
	}
}
