package wire

import "github.com/go-mysql-org/go-mysql/mysql"

// AppendBinaryResult appends a whole binary-protocol result set (the
// answer to COM_STMT_EXECUTE) of cols and rows, framed from sequence id
// seq, in the form a client that negotiated caps expects, and returns the
// next sequence id. Without columns it is an OK packet. status is sent as
// the status flags.
func AppendBinaryResult(dst []byte, cols []Column, rows [][]Value, status uint16, seq uint8, caps uint32) ([]byte, uint8) {
	var p []byte
	if len(cols) == 0 {
		return AppendPacket(dst, AppendOK(nil, OK{Status: status}), seq)
	}
	deprecateEOF := caps&mysql.CLIENT_DEPRECATE_EOF != 0
	dst, seq = AppendPacket(dst, AppendColumnCount(p, len(cols)), seq)
	for i := range cols {
		dst, seq = AppendPacket(dst, AppendColumnDef(p[:0], &cols[i]), seq)
	}
	if !deprecateEOF {
		dst, seq = AppendPacket(dst, AppendEOF(p[:0], EOF{Status: status}), seq)
	}
	for _, row := range rows {
		p = AppendBinaryRow(p[:0], row)
		dst, seq = AppendPacket(dst, p, seq)
	}
	if deprecateEOF {
		return AppendPacket(dst, AppendEOFAsOK(p[:0], EOF{Status: status}), seq)
	}
	return AppendPacket(dst, AppendEOF(p[:0], EOF{Status: status}), seq)
}

// AppendPrepareResponse appends the whole response to a COM_STMT_PREPARE
// that the proxy answers itself: the PrepareOK packet, a definition for
// each parameter (as VAR_STRING, named "?") and none for columns (the
// execution's result carries them), framed from seq.
func AppendPrepareResponse(dst []byte, ok PrepareOK, seq uint8, caps uint32) ([]byte, uint8) {
	ok.Columns = 0
	dst, seq = AppendPacket(dst, AppendPrepareOK(nil, ok), seq)
	if ok.Params == 0 {
		return dst, seq
	}
	param := Column{Name: "?", Charset: 63, Type: mysql.MYSQL_TYPE_VAR_STRING}
	var p []byte
	for range ok.Params {
		dst, seq = AppendPacket(dst, AppendColumnDef(p[:0], &param), seq)
	}
	if caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		dst, seq = AppendPacket(dst, AppendEOF(p[:0], EOF{}), seq)
	}
	return dst, seq
}
