package ovf

import (
	"encoding/xml"
)

// Redact returns the document b with the content of every UserPassword
// element removed (whatever its namespace), every other byte unchanged:
// the copy of ovf-env.xml that may be kept on disk. Parsing the result
// gives an Environment without a password; a caller that needs to know a
// password was given records HasPassword separately.
func Redact(b []byte) ([]byte, error) {
	var cuts []span
	depth := 0 // elements open inside a UserPassword, itself included
	var content int64
	err := scan(b, func(tok xml.Token, at span) error {
		switch t := tok.(type) {
		case xml.StartElement:
			if depth > 0 {
				depth++
			} else if t.Name.Local == "UserPassword" {
				depth, content = 1, at.end
			}
		case xml.EndElement:
			if depth > 0 {
				if depth--; depth == 0 {
					cuts = append(cuts, span{start: content, end: at.start})
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b))
	var pos int64
	for _, c := range cuts {
		out = append(out, b[pos:c.start]...)
		pos = c.end
	}
	return append(out, b[pos:]...), nil
}
