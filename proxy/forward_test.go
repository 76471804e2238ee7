package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// stream frames payloads as a server would send them, sequence ids from 1.
func stream(payloads ...[]byte) []byte {
	var out []byte
	seq := uint8(1)
	for _, p := range payloads {
		out, seq = wire.AppendPacket(out, p, seq)
	}
	return out
}

func colDef(name string) []byte {
	p := []byte{3, 'd', 'e', 'f'}
	for _, s := range []string{"shop", "t", "t", name, name} {
		p = append(p, byte(len(s)))
		p = append(p, s...)
	}
	return append(p, 0x0c, 0x21, 0, 0, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0)
}

func eofPkt(status uint16) []byte { return []byte{0xfe, 0, 0, byte(status), byte(status >> 8)} }

func okPkt(status uint16) []byte { return wire.AppendOK(nil, wire.OK{Status: status}) }

func okEOF(status uint16) []byte {
	p := okPkt(status)
	p[0] = 0xfe
	return p
}

func row(vals ...string) []byte {
	var p []byte
	for _, v := range vals {
		p = wire.AppendLenenc(p, uint64(len(v)))
		p = append(p, v...)
	}
	return p
}

// binRow is a binary-protocol row of one BIGINT.
func binRow(v int64) []byte {
	return wire.AppendBinaryRow(nil, []wire.Value{{Type: mysql.MYSQL_TYPE_LONGLONG, Int: v}})
}

func runForward(t *testing.T, shape wire.Shape, deprecateEOF bool, in []byte, bufSize int) (out []byte, f *forwarder, err error) {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriterSize(&buf, 64)
	f = &forwarder{br: bufio.NewReaderSize(bytes.NewReader(in), bufSize), bw: bw, eof: deprecateEOF, serverEOF: !deprecateEOF}
	err = f.forward(shape)
	bw.Flush()
	return buf.Bytes(), f, err
}

func TestForwardResponses(t *testing.T) {
	more := mysql.SERVER_MORE_RESULTS_EXISTS | mysql.SERVER_STATUS_AUTOCOMMIT
	big := bytes.Repeat([]byte("x"), wire.MaxPayload+5) // a row that spans two packets
	cases := []struct {
		name    string
		shape   wire.Shape
		eof     bool
		resp    []byte
		status  uint16
		trailer []byte // bytes after the response that must stay unread
	}{
		{"ok", wire.ShapeResult, false, stream(okPkt(2)), 2, nil},
		{"error", wire.ShapeResult, false, stream(wire.AppendErr(nil, mysql.NewError(1146, "no table"))), 0, nil},
		{"resultset classic EOF", wire.ShapeResult, false,
			stream([]byte{2}, colDef("a"), colDef("b"), eofPkt(2), row("1", "x"), row("2", "y"), eofPkt(0x22)), 0x22, nil},
		{"resultset deprecate EOF", wire.ShapeResult, true,
			stream([]byte{1}, colDef("a"), row("1"), okEOF(0x02)), 2, nil},
		{"multi results", wire.ShapeResult, false,
			stream([]byte{1}, colDef("a"), eofPkt(more), row("1"), eofPkt(more), okPkt(more), []byte{1}, colDef("b"), eofPkt(more), eofPkt(2)), 2, nil},
		{"error mid rows", wire.ShapeResult, false,
			stream([]byte{1}, colDef("a"), eofPkt(2), row("1"), wire.AppendErr(nil, mysql.NewError(1317, "interrupted"))), 0, nil},
		{"cursor", wire.ShapeCursor, false,
			stream([]byte{1}, colDef("a"), eofPkt(mysql.SERVER_STATUS_CURSOR_EXISTS)), mysql.SERVER_STATUS_CURSOR_EXISTS, nil},
		{"row starting with 0xfe across packets", wire.ShapeResult, true,
			stream([]byte{1}, colDef("a"), append([]byte{0xfe, 5, 0, 0, 1, 0, 0, 0, 0}, big[:wire.MaxPayload-9+5]...), okEOF(2)), 2, nil},
		{"field list", wire.ShapeFieldList, false, stream(colDef("a"), colDef("b"), eofPkt(2)), 2, nil},
		{"prepare", wire.ShapePrepare, false,
			stream([]byte{0, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0}, colDef("?"), colDef("?"), eofPkt(2), colDef("a"), eofPkt(2)), 0, nil},
		{"prepare deprecate EOF", wire.ShapePrepare, true,
			stream([]byte{0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, colDef("?"), colDef("a")), 0, nil},
		{"fetch", wire.ShapeRows, false, stream(binRow(1), binRow(2), eofPkt(mysql.SERVER_STATUS_LAST_ROW_SEND)), mysql.SERVER_STATUS_LAST_ROW_SEND, nil},
		{"one packet", wire.ShapeOne, false, stream([]byte("Uptime: 5  Threads: 1")), 0, nil},
	}
	for _, tc := range cases {
		for _, size := range []int{16, 4096} {
			out, f, err := runForward(t, tc.shape, tc.eof, tc.resp, size)
			if err != nil {
				t.Errorf("%s (buffer %d): %v", tc.name, size, err)
				continue
			}
			if !bytes.Equal(out, tc.resp) {
				t.Errorf("%s (buffer %d): forwarded %d bytes, want the %d bytes of the response exactly", tc.name, size, len(out), len(tc.resp))
			}
			if st, _ := f.status(); st != tc.status {
				t.Errorf("%s: status %#x, want %#x", tc.name, st, tc.status)
			}

			// Bytes after the end: the response is relayed, nothing past
			// its end is read, and the forwarder reports a desync (the
			// connection must not be reused).
			in := append(append([]byte{}, tc.resp...), []byte{9, 9, 9}...)
			out, f, err = runForward(t, tc.shape, tc.eof, in, size)
			var de *errDesync
			if !errors.As(err, &de) || !errors.Is(err, errTrailing) || !isServerRead(err) {
				t.Errorf("%s (buffer %d) with bytes after it: err %v, want a desync", tc.name, size, err)
			}
			if !bytes.Equal(out, tc.resp) {
				t.Errorf("%s (buffer %d) with bytes after it: forwarded %d bytes, want the %d of the response", tc.name, size, len(out), len(tc.resp))
			}
			if rest, _ := f.br.Peek(3); !bytes.Equal(rest, []byte{9, 9, 9}) {
				t.Errorf("%s: read past the end of the response", tc.name)
			}
		}
	}
}

func isServerRead(err error) bool {
	var sr errServerRead
	return errors.As(err, &sr)
}

// TestForwardDesyncs: a server whose bytes do not fit the response, or
// carry the wrong sequence ids, is out of step: the forwarder says so
// instead of relaying them as something they are not.
func TestForwardDesyncs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape wire.Shape
		in    []byte
	}{
		{"a row where a result starts", wire.ShapeResult, stream(row("1"), eofPkt(2))},
		{"rows without definitions", wire.ShapeResult, stream([]byte{1}, row("1"), row("2"), eofPkt(2))},
		{"a text row in a fetch", wire.ShapeRows, stream(row("1"), eofPkt(2))},
		// Rows already buffered pass in one write (passRows); what is not
		// plainly a row is still the walker's to judge.
		{"a text row after binary rows", wire.ShapeExecute, stream([]byte{1}, colDef("a"), eofPkt(2), binRow(1), binRow(2), row("x"), eofPkt(2))},
		{"a skipped sequence id among rows", wire.ShapeResult, func() []byte {
			b := stream([]byte{1}, colDef("a"), eofPkt(2), row("1"), row("2")) // sequence ids 1 to 5
			b, _ = wire.AppendPacket(b, row("3"), 7)
			return b
		}()},
		{"a skipped sequence id", wire.ShapeResult, func() []byte {
			b := stream([]byte{1}, colDef("a"), eofPkt(2)) // sequence ids 1 to 3
			b, _ = wire.AppendPacket(b, row("1"), 5)
			return b
		}()},
		{"a packet out of order", wire.ShapeResult, func() []byte {
			b, _ := wire.AppendPacket(nil, okPkt(2), 5)
			return b
		}()},
	} {
		_, _, err := runForward(t, tc.shape, false, tc.in, 4096)
		var de *errDesync
		if !errors.As(err, &de) || !isServerRead(err) {
			t.Errorf("%s: err %v, want a desync", tc.name, err)
		}
	}
	// A response cut short by a closed connection is a lost server, not a
	// desync.
	_, _, err := runForward(t, wire.ShapeResult, false, stream([]byte{1}, colDef("a")), 4096)
	var de *errDesync
	if errors.As(err, &de) || !isServerRead(err) {
		t.Errorf("cut response: err %v, want a server read error that is no desync", err)
	}
}

// TestForwardConvertsEOFForDeprecateEOFClients: server connections use
// classic EOF packets; a client that negotiated CLIENT_DEPRECATE_EOF gets no
// EOF after definitions, an OK (0xfe) in place of the final EOF, and packet
// numbers without gaps.
func TestForwardConvertsEOFForDeprecateEOFClients(t *testing.T) {
	more := mysql.SERVER_MORE_RESULTS_EXISTS | mysql.SERVER_STATUS_AUTOCOMMIT
	cases := []struct {
		name  string
		shape wire.Shape
		in    []byte
		want  []byte
	}{
		{"resultset", wire.ShapeResult,
			stream([]byte{1}, colDef("a"), eofPkt(2), row("1"), row("2"), []byte{0xfe, 1, 0, 0x22, 0}),
			stream([]byte{1}, colDef("a"), row("1"), row("2"), []byte{0xfe, 0, 0, 0x22, 0, 1, 0})},
		{"two result sets", wire.ShapeResult,
			stream([]byte{1}, colDef("a"), eofPkt(more), row("1"), eofPkt(more), []byte{1}, colDef("b"), eofPkt(more), eofPkt(2)),
			stream([]byte{1}, colDef("a"), row("1"), []byte{0xfe, 0, 0, byte(more), 0, 0, 0}, []byte{1}, colDef("b"), []byte{0xfe, 0, 0, 2, 0, 0, 0})},
		{"prepare", wire.ShapePrepare,
			stream([]byte{0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, colDef("?"), eofPkt(2), colDef("a"), eofPkt(2)),
			stream([]byte{0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, colDef("?"), colDef("a"))},
		{"cursor", wire.ShapeCursor,
			stream([]byte{1}, colDef("a"), eofPkt(mysql.SERVER_STATUS_CURSOR_EXISTS)),
			stream([]byte{1}, colDef("a"), []byte{0xfe, 0, 0, byte(mysql.SERVER_STATUS_CURSOR_EXISTS), 0, 0, 0})},
		{"set option", wire.ShapeOne, stream(eofPkt(2)), stream([]byte{0xfe, 0, 0, 2, 0, 0, 0})},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		bw := bufio.NewWriterSize(&out, 64)
		f := &forwarder{br: bufio.NewReaderSize(bytes.NewReader(tc.in), 4096), bw: bw, eof: true, serverEOF: true}
		if err := f.forward(tc.shape); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		bw.Flush()
		if !bytes.Equal(out.Bytes(), tc.want) {
			t.Errorf("%s:\n got %x\nwant %x", tc.name, out.Bytes(), tc.want)
		}
	}
}

func TestForwardStripsSessionTrackForClientsWithout(t *testing.T) {
	status := mysql.SERVER_STATUS_AUTOCOMMIT | mysql.SERVER_SESSION_STATE_CHANGED
	ok := []byte{0, 1, 0, byte(status), byte(status >> 8), 0, 0, 2, 'h', 'i', 3, 0, 1, 'x'}
	in := stream(ok)
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 64)
	f := &forwarder{br: bufio.NewReaderSize(bytes.NewReader(in), 64), bw: bw, stripTrack: true}
	if err := f.forward(wire.ShapeResult); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	want := stream([]byte{0, 1, 0, byte(mysql.SERVER_STATUS_AUTOCOMMIT), 0, 0, 0, 2, 'h', 'i'})
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("got %x\nwant %x", out.Bytes(), want)
	}
}

func TestForwardTruncatedResponseFails(t *testing.T) {
	full := stream([]byte{1}, colDef("a"), eofPkt(2), row("1"), eofPkt(2))
	for cut := 0; cut < len(full); cut++ {
		_, f, err := runForward(t, wire.ShapeResult, false, full[:cut], 4096)
		if err == nil {
			t.Fatalf("cut at %d: no error for a truncated response", cut)
		}
		if _, ok := err.(errServerRead); !ok {
			t.Fatalf("cut at %d: error %T is not a server read error", cut, err)
		}
		_ = f
	}
}

// FuzzForward feeds arbitrary server bytes to the forwarder: it must end
// with an error or a complete response, never panic or loop forever.
func FuzzForward(f *testing.F) {
	f.Add(stream([]byte{2}, colDef("a"), colDef("b"), eofPkt(2), row("1", "x"), eofPkt(0x22)), uint8(0), false)
	f.Add(stream(okPkt(8), []byte{1}, colDef("a"), row("1"), okEOF(2)), uint8(0), true)
	f.Add(stream([]byte{0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, colDef("?"), colDef("a")), uint8(3), true)
	f.Fuzz(func(t *testing.T, in []byte, shape uint8, eof bool) {
		var out bytes.Buffer
		fw := &forwarder{br: bufio.NewReaderSize(bytes.NewReader(in), 16), bw: bufio.NewWriterSize(&out, 16), cr: bufio.NewReader(bytes.NewReader(nil)), eof: eof, serverEOF: shape&0x40 != 0, stripTrack: shape&0x80 != 0}
		_ = fw.forward(wire.Shape(shape % 7))
	})
}
