package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestHeaderBytes(t *testing.T) {
	// The length is 3 bytes little-endian, then the sequence id.
	h := make([]byte, HeaderSize)
	PutHeader(h, 0x123456, 9)
	if want := []byte{0x56, 0x34, 0x12, 9}; !bytes.Equal(h, want) {
		t.Fatalf("PutHeader = % x, want % x", h, want)
	}
	if n := PayloadLen(h); n != 0x123456 {
		t.Fatalf("PayloadLen = %#x", n)
	}
	if n := PayloadLen([]byte{0xff, 0xff, 0xff}); n != MaxPayload {
		t.Fatalf("PayloadLen(ff ff ff) = %d, want MaxPayload", n)
	}
}

func TestAppendPacketBytes(t *testing.T) {
	// COM_QUERY "select 1" as the first packet of a command, byte for byte.
	got, next := AppendPacket(nil, AppendCommand(nil, mysql.COM_QUERY, "select 1"), 0)
	want := unhex(t, "09 00 00 00 03 73 65 6c 65 63 74 20 31")
	if !bytes.Equal(got, want) || next != 1 {
		t.Fatalf("got % x next %d, want % x next 1", got, next, want)
	}
	// An empty payload is a header alone; the sequence id wraps at 255.
	got, next = AppendPacket([]byte{0xaa}, nil, 255)
	if want := []byte{0xaa, 0, 0, 0, 255}; !bytes.Equal(got, want) || next != 0 {
		t.Fatalf("empty payload: % x next %d", got, next)
	}
}

func TestReadPacketSplitsLargePayloads(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (MaxPayload+10)/16+1)[:MaxPayload+10]
	for _, tc := range []struct {
		name    string
		size    int
		packets int // physical packets on the wire
	}{
		{"one short packet", 1000, 1},
		{"one byte short of a continuation", MaxPayload - 1, 1},
		// A payload of exactly MaxPayload must be followed by an empty
		// continuation, or the reader would wait for one.
		{"exactly MaxPayload", MaxPayload, 2},
		{"MaxPayload+10", MaxPayload + 10, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := big[:tc.size]
			framed, next := AppendPacket(nil, payload, 3)
			if len(framed) != tc.packets*HeaderSize+tc.size || next != uint8(3+tc.packets) {
				t.Fatalf("framed as %d bytes, next %d; want %d packets", len(framed), next, tc.packets)
			}
			r := serve(framed)
			got, seq, err := ReadPacket(r, nil, 1<<30, 3)
			if err != nil || seq != next || !bytes.Equal(got, payload) {
				t.Fatalf("ReadPacket: %d bytes, next %d, %v", len(got), seq, err)
			}
			if _, err := r.ReadByte(); err != io.EOF {
				t.Fatalf("bytes left after the packet: %v", err)
			}
		})
	}
}

func TestReadPacketAppendsToDst(t *testing.T) {
	// Forwarding reads into a buffer with header room in front: those bytes
	// must survive, in place, whether or not dst has to grow.
	for _, size := range []int{0, 10, MaxPayload + 10} {
		payload := bytes.Repeat([]byte{'x'}, size)
		framed, _ := AppendPacket(nil, payload, 0)
		for _, dst := range [][]byte{
			{1, 2, 3, 4},
			append(make([]byte, 0, 64), 1, 2, 3, 4),
		} {
			got, _, err := ReadPacket(serve(framed), dst, 1<<30, 0)
			if err != nil || !bytes.Equal(got[:4], []byte{1, 2, 3, 4}) || !bytes.Equal(got[4:], payload) {
				t.Fatalf("size %d, cap %d: %d bytes, %v", size, cap(dst), len(got), err)
			}
		}
	}
	// The limit counts the payload only, not what dst held before.
	framed, _ := AppendPacket(nil, make([]byte, 100), 0)
	if _, _, err := ReadPacket(serve(framed), make([]byte, 50), 100, 0); err != nil {
		t.Fatalf("a 100-byte payload after 50 bytes of room, limit 100: %v", err)
	}
}

func TestReadPacketSequence(t *testing.T) {
	framed, _ := AppendPacket(nil, []byte("abc"), 4)
	_, _, err := ReadPacket(serve(framed), nil, 1<<20, 1)
	var se *SequenceError
	if !errors.Is(err, ErrSequence) || !errors.As(err, &se) || se.Got != 4 || se.Want != 1 {
		t.Fatalf("wrong first sequence id: %v", err)
	}

	// A continuation must carry the next id: MaxPayload bytes at id 0, then
	// a continuation claiming id 5.
	bad := make([]byte, HeaderSize, HeaderSize+MaxPayload+HeaderSize+1)
	PutHeader(bad, MaxPayload, 0)
	bad = append(bad, make([]byte, MaxPayload)...)
	bad = append(bad, 1, 0, 0, 5, 'z')
	_, _, err = ReadPacket(serve(bad), nil, 1<<30, 0)
	if !errors.Is(err, ErrSequence) || !errors.As(err, &se) || se.Got != 5 || se.Want != 1 {
		t.Fatalf("wrong continuation id: %v", err)
	}
	if se.Error() != "packets out of order: sequence id 5, want 1" {
		t.Fatalf("message %q", se.Error())
	}

	// Ids wrap: a packet at 255 is followed by one at 0.
	framed, next := AppendPacket(nil, []byte("a"), 255)
	framed, _ = AppendPacket(framed, []byte("b"), next)
	r := serve(framed)
	_, seq, err := ReadPacket(r, nil, 10, 255)
	if err != nil || seq != 0 {
		t.Fatalf("packet at 255: next %d, %v", seq, err)
	}
	if p, _, err := ReadPacket(r, nil, 10, seq); err != nil || string(p) != "b" {
		t.Fatalf("packet after wrap: %q %v", p, err)
	}
}

func TestReadPacketTruncated(t *testing.T) {
	framed, _ := AppendPacket(nil, make([]byte, 100), 0)
	for _, tc := range []struct {
		name string
		in   []byte
		dst  []byte
		want error
	}{
		// Nothing at all is an orderly close; anything less than a whole
		// packet means the peer vanished in the middle of one.
		{"nothing", nil, nil, io.EOF},
		{"nothing, with header room", nil, []byte{0, 0, 0, 0}, io.EOF},
		{"half a header", framed[:2], nil, io.ErrUnexpectedEOF},
		{"header only", framed[:HeaderSize], nil, io.ErrUnexpectedEOF},
		{"half the payload", framed[:50], nil, io.ErrUnexpectedEOF},
		{"one byte short", framed[:len(framed)-1], nil, io.ErrUnexpectedEOF},
	} {
		if _, _, err := ReadPacket(serve(tc.in), tc.dst, 1000, 0); err != tc.want {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A full first packet whose continuation never comes.
	full, _ := AppendPacket(nil, make([]byte, MaxPayload), 0)
	full = full[:HeaderSize+MaxPayload]
	if _, _, err := ReadPacket(serve(full), nil, 1<<30, 0); err != io.ErrUnexpectedEOF {
		t.Errorf("missing continuation: %v", err)
	}
	// An empty packet is a valid, empty payload.
	if p, next, err := ReadPacket(serve([]byte{0, 0, 0, 7}), nil, 0, 7); err != nil || len(p) != 0 || next != 8 {
		t.Errorf("empty packet: %q %d %v", p, next, err)
	}
}

func TestReadPacketTooLarge(t *testing.T) {
	// What follows the refused packet: the client's next command.
	after, _ := AppendPacket(nil, AppendCommand(nil, mysql.COM_PING, ""), 0)
	for _, tc := range []struct {
		name  string
		size  int
		limit int
		want  TooLargeError
	}{
		{"short packet", 100, 99, TooLargeError{Remaining: 100}},
		{"full first packet", MaxPayload + 10, 100, TooLargeError{Remaining: MaxPayload, More: true}},
		// The empty continuation of an exactly-MaxPayload packet must be
		// drained too.
		{"exactly MaxPayload", MaxPayload, 100, TooLargeError{Remaining: MaxPayload, More: true}},
		// The first packet fits; the continuation pushes it over.
		{"continuation", MaxPayload + 10, MaxPayload + 5, TooLargeError{Remaining: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			framed, _ := AppendPacket(nil, make([]byte, tc.size), 0)
			r := serve(append(framed, after...))
			_, _, err := ReadPacket(r, nil, tc.limit, 0)
			var tl *TooLargeError
			if !errors.Is(err, ErrTooLarge) || !errors.As(err, &tl) || *tl != tc.want {
				t.Fatalf("err = %#v, want %+v", err, tc.want)
			}
			if tl.Error() != ErrTooLarge.Error() {
				t.Fatalf("message %q", tl.Error())
			}
			Discard(r, tl, 1<<30)
			p, _, err := ReadPacket(r, nil, 100, 0)
			if err != nil || !bytes.Equal(p, []byte{mysql.COM_PING}) {
				t.Fatalf("packet after the drained one: % x, %v", p, err)
			}
		})
	}
}

func TestReadPacketTooLargeReadsNoPayload(t *testing.T) {
	// A hostile length must not make the proxy read (or allocate) the
	// payload: after the refusal, the reader stands right after the header.
	framed, _ := AppendPacket(nil, []byte("0123456789"), 0)
	r := serve(framed)
	dst, _, err := ReadPacket(r, make([]byte, 0, 4), 9, 0)
	if !errors.Is(err, ErrTooLarge) || len(dst) != 0 {
		t.Fatalf("%d bytes, %v", len(dst), err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "0123456789" {
		t.Fatalf("left unread: %q", rest)
	}
}

func TestDiscardBudget(t *testing.T) {
	framed, _ := AppendPacket(nil, []byte("0123456789"), 0)
	r := serve(framed)
	_, _, err := ReadPacket(r, nil, 5, 0)
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Fatal(err)
	}
	// Discard reads at most its budget, whatever the packet says.
	Discard(r, tl, 4)
	rest, _ := io.ReadAll(r)
	if string(rest) != "456789" {
		t.Fatalf("after a budget of 4: %q left", rest)
	}
	// A peer that vanishes mid-drain ends it quietly.
	r = serve(framed[:8])
	if _, _, err := ReadPacket(r, nil, 5, 0); !errors.As(err, &tl) {
		t.Fatal(err)
	}
	Discard(r, tl, 1<<20)
	big, _ := AppendPacket(nil, make([]byte, MaxPayload+10), 0)
	r = serve(big[:HeaderSize+MaxPayload+2]) // the continuation header is cut
	if _, _, err := ReadPacket(r, nil, 5, 0); !errors.As(err, &tl) {
		t.Fatal(err)
	}
	Discard(r, tl, 1<<30)
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after a cut drain: %v", err)
	}
}

func TestFrameCommand(t *testing.T) {
	for _, size := range []int{0, 1, 100, MaxPayload - 1, MaxPayload, MaxPayload + 10} {
		buf := make([]byte, HeaderSize, HeaderSize+size)
		buf = append(buf, bytes.Repeat([]byte{'q'}, size)...)
		framed := FrameCommand(buf)
		want, wantNext := AppendPacket(nil, buf[HeaderSize:], 0)
		if !bytes.Equal(framed, want) {
			t.Fatalf("size %d: framed differently from AppendPacket at id 0", size)
		}
		// The usual case frames in place, without copying.
		if size < MaxPayload && &framed[0] != &buf[0] {
			t.Fatalf("size %d: copied", size)
		}
		got, next, err := ReadPacket(serve(framed), nil, 1<<30, 0)
		if err != nil || len(got) != size || next != wantNext {
			t.Fatalf("size %d: read back %d bytes, next %d, %v", size, len(got), next, err)
		}
	}
}

func TestAppendCommand(t *testing.T) {
	got := AppendCommand([]byte{9}, mysql.COM_INIT_DB, "shop")
	if want := []byte{9, mysql.COM_INIT_DB, 's', 'h', 'o', 'p'}; !bytes.Equal(got, want) {
		t.Fatalf("% x", got)
	}
}

// TestCommandPackets: a command of MaxPayload bytes or more goes as
// several packets, the last shorter (empty when the payload is a multiple
// of MaxPayload), numbered from 0, read back whole; the answer's sequence
// id follows the last.
func TestCommandPackets(t *testing.T) {
	for _, size := range []int{0, 10, MaxPayload - 1, MaxPayload, MaxPayload + 5, 2 * MaxPayload} {
		buf := make([]byte, HeaderSize+size)
		for i := range size {
			buf[HeaderSize+i] = byte(i)
		}
		packets, next := CommandPackets(buf)
		var wireBytes bytes.Buffer
		if _, err := packets.WriteTo(&wireBytes); err != nil {
			t.Fatal(err)
		}
		got, seq, err := ReadPacket(bufio.NewReaderSize(&wireBytes, 1<<16), make([]byte, HeaderSize), 1<<26, 0)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if len(got)-HeaderSize != size || !bytes.Equal(got[HeaderSize:], buf[HeaderSize:]) {
			t.Fatalf("%d bytes: read back %d bytes", size, len(got)-HeaderSize)
		}
		if want := uint8(size/MaxPayload + 1); seq != want || next != want {
			t.Fatalf("%d bytes: next sequence %d / %d, want %d", size, seq, next, want)
		}
	}
}
