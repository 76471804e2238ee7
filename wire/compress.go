package wire

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"io"
	"sync"
)

// The compressed protocol (CLIENT_COMPRESS) wraps the ordinary packet
// stream in frames: 3-byte compressed length, 1-byte sequence id, 3-byte
// uncompressed length (0: the payload is not compressed), then the
// payload. The frames' sequence ids restart at 0 with each command the
// client sends and continue through the response.

// CompressedHeaderSize is the size of a compressed frame's header.
const CompressedHeaderSize = 7

// minCompressLength: shorter payloads are sent uncompressed, as MySQL does.
const minCompressLength = 50

// Compressed turns a connection into the ordinary packet stream carried in
// compressed frames: Read yields the client's packets, Write frames what
// the proxy sends. Read and Write are used by one goroutine at a time.
//
// Read streams: a frame's bytes go from the socket, through the inflater,
// straight into the caller's buffer, so a statement that inflates to S
// bytes costs S once (in the packet the caller assembles), not again in a
// buffer of the whole frame, and an idle connection keeps no frame.
type Compressed struct {
	rw       io.ReadWriter
	deflates *DeflatePool
	seq      uint8 // the next frame's sequence id

	// frame is the current frame's payload as it comes off rw: remaining
	// says how much is left of it, body buffers it so that the inflater
	// reads it without allocating a reader of its own per frame.
	frame bufio.Reader
	body  io.LimitedReader
	// raw: bytes of an uncompressed frame not yet read. inflating: bytes a
	// compressed frame still has to inflate to.
	raw, inflating int
	zr             io.ReadCloser
	zw             *zlib.Writer
	out            bytes.Buffer
	limit          int
}

// NewCompressed wraps rw; limit bounds a frame's uncompressed size, so a
// hostile length cannot make the proxy allocate. deflates may be nil.
func NewCompressed(rw io.ReadWriter, limit int, deflates *DeflatePool) *Compressed {
	c := &Compressed{rw: rw, limit: limit, deflates: deflates}
	c.body.R = rw
	return c
}

// DeflatePool lends deflate state, which is large (hundreds of KB), so that
// only sessions writing at this moment hold one. Its zero value is ready.
type DeflatePool struct{ p sync.Pool }

func (d *DeflatePool) get() *zlib.Writer {
	if d != nil {
		if zw, ok := d.p.Get().(*zlib.Writer); ok {
			return zw
		}
	}
	return zlib.NewWriter(nil)
}

func (d *DeflatePool) put(zw *zlib.Writer) {
	if d != nil {
		d.p.Put(zw)
	}
}

func (c *Compressed) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for c.raw == 0 && c.inflating == 0 {
		if err := c.readFrame(); err != nil {
			return 0, err
		}
	}
	if c.raw > 0 {
		n, err := c.frame.Read(p[:min(len(p), c.raw)])
		c.raw -= n
		if err != nil {
			return n, noEOF(err)
		}
		return n, nil
	}
	return c.inflate(p)
}

// readFrame reads a frame's header and sets up reading its payload.
func (c *Compressed) readFrame() error {
	var h [CompressedHeaderSize]byte
	if _, err := io.ReadFull(c.rw, h[:]); err != nil {
		return err
	}
	compLen := PayloadLen(h[:3])
	rawLen := PayloadLen(h[4:7])
	c.seq = h[3] + 1
	if compLen > c.limit || rawLen > c.limit {
		return ErrTooLarge
	}
	c.body.N = int64(compLen)
	c.frame.Reset(&c.body)
	if rawLen == 0 {
		c.raw = compLen
		return nil
	}
	var err error
	if c.zr == nil {
		c.zr, err = zlib.NewReader(&c.frame)
	} else {
		err = c.zr.(zlib.Resetter).Reset(&c.frame, nil)
	}
	if err != nil {
		return ErrMalformed
	}
	c.inflating = rawLen
	return nil
}

// inflate reads the current compressed frame into p. The frame must
// inflate to exactly the length its header says: the end of its deflate
// stream (and checksum) is checked when the last byte is read.
func (c *Compressed) inflate(p []byte) (int, error) {
	n, err := c.zr.Read(p[:min(len(p), c.inflating)])
	c.inflating -= n
	switch {
	case c.inflating > 0 && err == nil:
		return n, nil
	case c.inflating > 0: // short, or corrupt
		c.inflating = 0
		return n, ErrMalformed
	case err == nil:
		// All of it is here; the stream must end now.
		var one [1]byte
		if m, err := c.zr.Read(one[:]); m != 0 || err != io.EOF {
			return n, ErrMalformed
		}
	case err != io.EOF:
		return n, ErrMalformed
	}
	// Bytes after the deflate stream, inside the frame, are skipped so
	// that the next frame's header is read where it starts.
	if _, err := c.frame.Discard(c.frame.Buffered()); err != nil {
		return n, ErrMalformed
	}
	if _, err := io.Copy(io.Discard, &c.body); err != nil {
		return n, noEOF(err)
	}
	return n, nil
}

// Write sends p in one or more frames.
func (c *Compressed) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), MaxPayload)]
		if err := c.writeFrame(chunk); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

func (c *Compressed) writeFrame(p []byte) error {
	c.out.Reset()
	c.out.Write(make([]byte, CompressedHeaderSize))
	rawLen := 0
	if len(p) >= minCompressLength {
		zw := c.deflates.get()
		zw.Reset(&c.out)
		_, err := zw.Write(p)
		if err == nil {
			err = zw.Close()
		}
		c.deflates.put(zw)
		if err != nil {
			return err
		}
		rawLen = len(p)
	} else {
		c.out.Write(p)
	}
	b := c.out.Bytes()
	if rawLen > 0 && len(b)-CompressedHeaderSize >= len(p) {
		// Incompressible: send it as it is.
		c.out.Truncate(CompressedHeaderSize)
		c.out.Write(p)
		b, rawLen = c.out.Bytes(), 0
	}
	PutHeader(b[:4], len(b)-CompressedHeaderSize, c.seq)
	b[4], b[5], b[6] = byte(rawLen), byte(rawLen>>8), byte(rawLen>>16)
	c.seq++
	_, err := c.rw.Write(b)
	if c.out.Cap() > 1<<20 {
		c.out = bytes.Buffer{} // a big response should not pin its buffer
	}
	return err
}
