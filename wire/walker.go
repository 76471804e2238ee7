package wire

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Shape is what the response to a command looks like on the wire.
type Shape uint8

const (
	// ShapeResult answers COM_QUERY: text result sets, OK, ERR or a LOCAL
	// INFILE request, several while the status says more results exist.
	ShapeResult Shape = iota
	// ShapeOne is exactly one packet: OK, ERR, EOF or a string (COM_PING,
	// COM_INIT_DB, COM_STATISTICS, COM_SET_OPTION, COM_RESET_CONNECTION).
	ShapeOne
	// ShapeFieldList answers COM_FIELD_LIST: column definitions until EOF,
	// or ERR.
	ShapeFieldList
	// ShapePrepare answers COM_STMT_PREPARE: a prepare OK with parameter
	// and column definitions, or ERR.
	ShapePrepare
	// ShapeRows answers COM_STMT_FETCH: binary rows until EOF, or ERR.
	ShapeRows
	// ShapeExecute answers COM_STMT_EXECUTE without a cursor: like
	// ShapeResult, with binary rows (a prepared LOAD DATA LOCAL INFILE asks
	// for the file as a text one does).
	ShapeExecute
	// ShapeCursor answers COM_STMT_EXECUTE with a cursor asked for: like
	// ShapeExecute, except that when the server opened the cursor, the
	// response ends after the column definitions (rows come through
	// COM_STMT_FETCH).
	ShapeCursor
)

// ExecuteShape is the shape of the response to a COM_STMT_EXECUTE with
// the given flags.
func ExecuteShape(flags byte) Shape {
	if flags&CursorFlags != 0 {
		return ShapeCursor
	}
	return ShapeExecute
}

// Kind is what one packet of a response is.
type Kind uint8

const (
	KindOK  Kind = iota + 1 // an OK packet; the response ends unless more results exist
	KindErr                 // an ERR packet; the response ends
	// KindEOF ends rows, a field list, a one-packet response, or column
	// definitions when a cursor was opened: a classic EOF, or an OK with
	// header 0xfe from a peer that negotiated CLIENT_DEPRECATE_EOF.
	KindEOF
	// KindDefsEOF is the classic EOF after column or parameter definitions,
	// which a CLIENT_DEPRECATE_EOF peer never sends.
	KindDefsEOF
	KindInfile      // a LOCAL INFILE request: the client's file, then the server's OK or ERR follow
	KindColumnCount // the first packet of a result set
	KindColumnDef
	KindParamDef
	KindRow
	KindPrepareOK
	KindOther // a one-packet response that is none of the above (COM_STATISTICS's text)
)

// maxColumns bounds a result set's column count, which the walker only
// counts down: a table has at most 4096 columns, but a select list more
// (MariaDB answers SELECT of 68,001 literals, mtr's mysql test), so only a
// count no server could send in packets of its size is refused.
const maxColumns = 1 << 24

type walkState uint8

const (
	stFirst walkState = iota // the first packet of a result, or of the next one
	stColumns
	stColumnsEOF
	stRows
	stOne
	stFieldList
	stPrepareOK
	stParams
	stParamsEOF
	stPrepareColumns
	stPrepareColumnsEOF
	stDone
)

// A Walker follows a server's response to one command, one logical packet
// at a time, and says what each packet is and when the response ends. It
// decodes only what the grammar needs: OK and EOF status flags, the column
// count, and the prepare OK's counts. Its zero value walks a ShapeResult
// response from a peer that sends classic EOF packets.
type Walker struct {
	shape        Shape
	deprecateEOF bool
	state        walkState
	left         int // definitions still to come in this block
	prepared     PrepareOK
	status       uint16
	hasStatus    bool
	warnings     uint16
}

// Reset readies w for the response to a new command. deprecateEOF says the
// sending side negotiated CLIENT_DEPRECATE_EOF.
func (w *Walker) Reset(shape Shape, deprecateEOF bool) {
	*w = Walker{shape: shape, deprecateEOF: deprecateEOF}
	switch shape {
	case ShapeOne:
		w.state = stOne
	case ShapeFieldList:
		w.state = stFieldList
	case ShapePrepare:
		w.state = stPrepareOK
	case ShapeRows:
		w.state = stRows
	}
}

// Done reports whether the response has ended.
func (w *Walker) Done() bool { return w.state == stDone }

// Status returns the server status flags of the last packet that ended the
// response or a result in it (OK, or EOF after rows), and whether there was
// one: prepare and statistics responses carry none, and a response that
// ended in an error has only what an earlier result in it said.
func (w *Walker) Status() (uint16, bool) { return w.status, w.hasStatus }

// Warnings is the warning count of the packet Status comes from: what
// SHOW WARNINGS would list after the response.
func (w *Walker) Warnings() uint16 { return w.warnings }

// Expecting says what the walker expects next, for the log line of a
// response it could not follow.
func (w *Walker) Expecting() string {
	switch w.state {
	case stFirst:
		return "the first packet of a result"
	case stColumns, stPrepareColumns:
		return "a column definition"
	case stColumnsEOF, stParamsEOF, stPrepareColumnsEOF:
		return "the EOF after definitions"
	case stRows:
		return "a row or the end of rows"
	case stOne:
		return "a one-packet answer"
	case stFieldList:
		return "a field definition or the end of the list"
	case stPrepareOK:
		return "a prepare OK"
	case stParams:
		return "a parameter definition"
	}
	return "nothing more"
}

// PrepareOK is the decoded first packet of a successful prepare response.
func (w *Walker) PrepareOK() PrepareOK { return w.prepared }

func (w *Walker) setStatus(st, warnings uint16) {
	w.status, w.hasStatus, w.warnings = st, true, warnings
}

// Next classifies the next logical packet of the response. p is its
// payload, or as much of its start as the caller holds: OK, EOF and prepare
// OK packets are decoded only when whole. n is the payload length of its
// first physical packet, which tells an EOF from a row that starts with
// 0xfe. An error means the server's bytes do not follow the grammar.
func (w *Walker) Next(p []byte, n int) (Kind, error) {
	if n == 0 || len(p) == 0 {
		return 0, fmt.Errorf("%w: empty packet in a response", ErrMalformed)
	}
	isEOF := IsEOFPacket(p, n)
	isErr := p[0] == ErrHeader && n < MaxPayload
	switch w.state {
	case stFirst:
		switch {
		case p[0] == OKHeader:
			ok, err := ParseOK(p)
			if err != nil {
				return 0, err
			}
			w.setStatus(ok.Status, ok.Warnings)
			if ok.Status&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
				w.state = stDone
			}
			return KindOK, nil
		case isErr:
			w.state = stDone
			return KindErr, nil
		case p[0] == InfileHeader && n < MaxPayload:
			// The server's OK or ERR comes next. An execution may ask too:
			// MariaDB prepares LOAD DATA LOCAL INFILE.
			return KindInfile, nil
		}
		cols, err := ParseColumnCount(p)
		if err != nil {
			return 0, err
		}
		if _, size, _ := Lenenc(p); size != n {
			// A row read as the start of a result, say.
			return 0, fmt.Errorf("%w: bytes after the column count", ErrMalformed)
		}
		w.state, w.left = stColumns, cols
		return KindColumnCount, nil
	case stColumns:
		if err := checkDefinition(p, n); err != nil {
			return 0, err
		}
		w.countDefinition(stColumnsEOF, stRows)
		return KindColumnDef, nil
	case stColumnsEOF:
		if !isEOF {
			return 0, fmt.Errorf("%w: no EOF after column definitions", ErrMalformed)
		}
		e, err := parseEnd(p)
		if err != nil {
			return 0, err
		}
		if w.opensCursor(e.Status) {
			// A cursor was opened: rows come later through COM_STMT_FETCH,
			// and this EOF ends the response.
			w.setStatus(e.Status, e.Warnings)
			w.state = stDone
			return KindEOF, nil
		}
		w.state = stRows
		return KindDefsEOF, nil
	case stRows:
		if w.shape != ShapeResult && !isErr && !isEOF && p[0] != binaryRowHeader {
			return 0, fmt.Errorf("%w: a binary row starts with %#x", ErrMalformed, p[0])
		}
		return w.untilEnd(p, isErr, isEOF, KindRow)
	case stOne:
		w.state = stDone
		switch {
		case p[0] == OKHeader:
			if ok, err := ParseOK(p); err == nil {
				w.setStatus(ok.Status, ok.Warnings)
			}
			return KindOK, nil
		case isErr:
			return KindErr, nil
		case isEOF && IsClassicEOF(p):
			e, _ := ParseEOF(p)
			w.setStatus(e.Status, e.Warnings)
			return KindEOF, nil
		case isEOF && w.deprecateEOF:
			// COM_SET_OPTION's EOF, sent as an OK with header 0xfe.
			if e, err := parseEnd(p); err == nil {
				w.setStatus(e.Status, e.Warnings)
				return KindEOF, nil
			}
		}
		return KindOther, nil
	case stFieldList:
		if !isErr && !isEOF {
			if err := checkDefinition(p, n); err != nil {
				return 0, err
			}
		}
		return w.untilEnd(p, isErr, isEOF, KindColumnDef)
	case stPrepareOK:
		w.state = stDone
		switch {
		case isErr:
			return KindErr, nil
		case p[0] != OKHeader:
			return KindOther, nil
		}
		ok, err := ParsePrepareOK(p)
		if err != nil {
			return 0, err
		}
		w.prepared = ok
		w.nextPrepareBlock(int(ok.Params), stParams)
		return KindPrepareOK, nil
	case stParams:
		if err := checkDefinition(p, n); err != nil {
			return 0, err
		}
		if w.left--; w.left == 0 {
			if w.deprecateEOF {
				w.nextPrepareBlock(int(w.prepared.Columns), stPrepareColumns)
			} else {
				w.state = stParamsEOF
			}
		}
		return KindParamDef, nil
	case stParamsEOF:
		if !isEOF {
			return 0, fmt.Errorf("%w: no EOF after parameter definitions", ErrMalformed)
		}
		w.nextPrepareBlock(int(w.prepared.Columns), stPrepareColumns)
		return KindDefsEOF, nil
	case stPrepareColumns:
		if err := checkDefinition(p, n); err != nil {
			return 0, err
		}
		w.countDefinition(stPrepareColumnsEOF, stDone)
		return KindColumnDef, nil
	case stPrepareColumnsEOF:
		if !isEOF {
			return 0, fmt.Errorf("%w: no EOF after column definitions", ErrMalformed)
		}
		w.state = stDone
		return KindDefsEOF, nil
	}
	return 0, fmt.Errorf("%w: packet after the end of the response", ErrMalformed)
}

// opensCursor reports whether the EOF after a result's column definitions,
// with status st, ends the response because the server opened a cursor.
// Only an execution that asked for one gets one, and a cursor is a single
// result: a stored procedure's own open cursor shows in the status of every
// result set the procedure sends meanwhile (text or binary, cursor asked
// for or not), but those are followed by more results, at least the CALL's
// own OK.
func (w *Walker) opensCursor(st uint16) bool {
	return w.shape == ShapeCursor && st&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 &&
		st&mysql.SERVER_MORE_RESULTS_EXISTS == 0
}

// checkDefinition checks that a column or parameter definition (payload p,
// or its start, of length n) starts with the catalog every server sends,
// "def": anything else means the walker and the server disagree on where
// they are in the response.
func checkDefinition(p []byte, n int) error {
	if len(p) >= 4 {
		if p[0] == 3 && p[1] == 'd' && p[2] == 'e' && p[3] == 'f' {
			return nil
		}
	} else if len(p) < n {
		return nil // only the start of a large packet: nothing to tell by
	}
	return fmt.Errorf("%w: a column definition without catalog \"def\"", ErrMalformed)
}

// untilEnd classifies a packet of a run that ERR or EOF ends: rows
// (item KindRow), or a field list's definitions. After rows of a result,
// an EOF that says more results exist starts the next result.
func (w *Walker) untilEnd(p []byte, isErr, isEOF bool, item Kind) (Kind, error) {
	switch {
	case isErr:
		w.state = stDone
		return KindErr, nil
	case isEOF:
		e, err := parseEnd(p)
		if err != nil {
			return 0, err
		}
		w.setStatus(e.Status, e.Warnings)
		w.state = stDone
		if item == KindRow && w.shape != ShapeRows && e.Status&mysql.SERVER_MORE_RESULTS_EXISTS != 0 {
			w.state = stFirst
		}
		return KindEOF, nil
	}
	return item, nil
}

// countDefinition counts one column definition of a block; after the last,
// the walker expects the EOF that ends the block (eofState), or, from a peer
// that sends none, what follows it (next).
func (w *Walker) countDefinition(eofState, next walkState) {
	if w.left--; w.left == 0 {
		w.state = eofState
		if w.deprecateEOF {
			w.state = next
		}
	}
}

// nextPrepareBlock moves to a block of count definitions in state st, or
// past it when it is empty: parameters are followed by columns, columns end
// the response.
func (w *Walker) nextPrepareBlock(count int, st walkState) {
	switch {
	case count > 0:
		w.state, w.left = st, count
	case st == stParams:
		w.nextPrepareBlock(int(w.prepared.Columns), stPrepareColumns)
	default:
		w.state = stDone
	}
}

// InRows reports whether the walker expects rows of a result set, and
// whether they are binary (prepared statements) rows.
func (w *Walker) InRows() (rows, binary bool) { return w.state == stRows, w.shape != ShapeResult }

// RowRun measures the run of whole row packets at the start of buf, whose
// first must carry sequence id seq: it returns their total size, headers
// included, and how many there are. The run stops before anything that is
// not plainly a row (a packet starting with 0xfe or 0xff, which may end the
// rows; an empty one; one of maximum size, which another continues; a
// binary row that does not start with 0x00; a sequence id out of step) and
// before a packet not wholly in buf. Rows need no decision of the walker,
// so a forwarder may pass such a run in one write and leave what stopped
// it to Next. It is the forwarder's fast path for result sets of many
// small rows, where per-packet work would cost more than the copy.
//
// With renumber not 0, the sequence id of each packet of the run is
// lowered by it in place, for a client that was not sent packets the
// server sent before the rows (see the forwarder's EOF conversion).
func RowRun(buf []byte, seq, renumber uint8, binary bool) (size, count int) {
	for len(buf)-size > HeaderSize {
		h := buf[size:]
		n := PayloadLen(h)
		if n == 0 || n >= MaxPayload || h[3] != seq || len(h) < HeaderSize+n {
			break
		}
		if first := h[HeaderSize]; first == EOFHeader || first == ErrHeader || binary && first != binaryRowHeader {
			break
		}
		h[3] -= renumber
		size += HeaderSize + n
		count++
		seq++
	}
	return size, count
}
