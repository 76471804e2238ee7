package wire

import (
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
type Compressed struct {
	rw       io.ReadWriter
	deflates *DeflatePool
	seq      uint8 // the next frame's sequence id

	pending []byte // inflated bytes not yet read
	frame   []byte
	inflate bytes.Buffer
	zr      io.ReadCloser
	zw      *zlib.Writer
	out     bytes.Buffer
	limit   int
}

// NewCompressed wraps rw; limit bounds a frame's uncompressed size, so a
// hostile length cannot make the proxy allocate. deflates may be nil.
func NewCompressed(rw io.ReadWriter, limit int, deflates *DeflatePool) *Compressed {
	return &Compressed{rw: rw, limit: limit, deflates: deflates}
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
	for len(c.pending) == 0 {
		if err := c.readFrame(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

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
	if cap(c.frame) < compLen {
		c.frame = make([]byte, compLen)
	}
	c.frame = c.frame[:compLen]
	if _, err := io.ReadFull(c.rw, c.frame); err != nil {
		return noEOF(err)
	}
	if rawLen == 0 {
		c.pending = c.frame
		return nil
	}
	var err error
	if c.zr == nil {
		c.zr, err = zlib.NewReader(bytes.NewReader(c.frame))
	} else {
		err = c.zr.(zlib.Resetter).Reset(bytes.NewReader(c.frame), nil)
	}
	if err != nil {
		return ErrMalformed
	}
	c.inflate.Reset()
	c.inflate.Grow(rawLen)
	n, err := io.Copy(&c.inflate, io.LimitReader(c.zr, int64(rawLen)+1))
	if err != nil || int(n) != rawLen {
		return ErrMalformed
	}
	c.pending = c.inflate.Bytes()
	return nil
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
