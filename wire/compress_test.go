package wire

import (
	"bytes"
	"errors"
	"io"
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
