// Package csvsafe keeps the CSV files mailout writes from running as
// spreadsheet formulas (OWASP "CSV Injection", CWE-1236), and reads such
// files back as they were.
//
// The cells come from outside: sign-up forms, imported lists, receivers'
// replies. A cell that starts with = + - @, a tab or a carriage return is
// a formula to Excel, LibreOffice and Google Sheets; Cell puts a single
// quote in front of it, which they show as text, and Unquote takes that
// quote off again when mailout reads the file.
package csvsafe

// Cell returns s, with a single quote in front when a spreadsheet would
// read it as a formula, or when Unquote would otherwise change it (it
// starts with quotes and then a formula character). RFC 4180 quoting is
// left to encoding/csv.
func Cell(s string) string {
	if quoted(s) {
		return "'" + s
	}
	return s
}

// Unquote undoes Cell: the single quote Cell puts in front is taken off.
// Every string reads back as it was: Unquote(Cell(s)) == s.
func Unquote(s string) string {
	if s != "" && s[0] == '\'' && quoted(s[1:]) {
		return s[1:]
	}
	return s
}

// quoted: s is a formula to a spreadsheet once its leading single quotes
// are left out.
func quoted(s string) bool {
	i := 0
	for i < len(s) && s[i] == '\'' {
		i++
	}
	if i == len(s) {
		return false
	}
	switch s[i] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}
