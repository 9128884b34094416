package ovf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

const namespaceXSI = "http://www.w3.org/2001/XMLSchema-instance"

// maxDepth bounds element nesting; real documents are five levels deep.
const maxDepth = 64

var bom = []byte("\xef\xbb\xbf")

// span is where a token lies in the document: byte offsets [start, end)
// and the line it ends on.
type span struct {
	start, end int64
	line       int
}

// scan feeds the tokens of the document b to fn, a leading UTF-8 BOM
// skipped (offsets still count from the start of b). A syntax error names
// its line and column; encoding/xml's message quotes the offending text,
// so inside a secret element only the position is given.
func scan(b []byte, fn func(tok xml.Token, at span) error) error {
	body := bytes.TrimPrefix(b, bom)
	skip := int64(len(b) - len(body))
	d := xml.NewDecoder(bytes.NewReader(body))
	depth, secret := 0, 0 // open elements, open secret elements
	rooted := false
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			if !rooted {
				return fmt.Errorf("%w: no root element", ErrSyntax)
			}
			return nil
		}
		line, col := d.InputPos()
		if err != nil {
			msg := err.Error()
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				msg = se.Msg // without its own "on line N"
			}
			if secret > 0 {
				msg = "malformed content in UserPassword or CustomData"
			}
			return fmt.Errorf("%w: line %d, column %d: %s", ErrSyntax, line, col, msg)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && rooted { // encoding/xml reads on past the root
				return fmt.Errorf("%w: line %d, column %d: a second root element %s", ErrSyntax, line, col, t.Name.Local)
			}
			rooted = true
			if depth++; depth > maxDepth {
				return fmt.Errorf("%w: line %d, column %d: elements nested deeper than %d", ErrSyntax, line, col, maxDepth)
			}
			if isSecret(t.Name.Local) {
				secret++
			}
		case xml.EndElement:
			depth--
			if isSecret(t.Name.Local) {
				secret--
			}
		}
		if err := fn(tok, span{start: skip + start, end: skip + d.InputOffset(), line: line}); err != nil {
			return err
		}
	}
}

// isSecret reports whether an element's content is a secret.
func isSecret(local string) bool { return local == "UserPassword" || local == "CustomData" }

// node is an element of the document: its resolved name, its own character
// data (not its children's), and where it starts.
type node struct {
	name     xml.Name
	path     string // "Environment/ProvisioningSection/Version", for errors
	line     int
	isNil    bool // xsi:nil="true"
	data     strings.Builder
	children []*node
}

// parseTree reads the whole document into a tree of nodes.
func parseTree(b []byte) (*node, error) {
	var root *node
	var stack []*node
	err := scan(b, func(tok xml.Token, at span) error {
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name, path: t.Name.Local, line: at.line, isNil: nilAttr(t.Attr)}
			if len(stack) == 0 {
				root = n
			} else {
				parent := stack[len(stack)-1]
				n.path = parent.path + "/" + n.path
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].data.Write(t)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return root, nil
}

func nilAttr(attrs []xml.Attr) bool {
	for _, a := range attrs {
		if a.Name.Local == "nil" && (a.Name.Space == namespaceXSI || a.Name.Space == "xsi") {
			v := strings.TrimSpace(a.Value)
			return strings.EqualFold(v, "true") || v == "1"
		}
	}
	return false
}

// known reports whether space is a namespace whose elements Parse reads.
func known(space string) bool {
	return space == NamespaceWA || space == NamespaceOVF || space == ""
}

// all returns the children named local in a known namespace. It is safe on
// a nil node (an absent optional element).
func (n *node) all(local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, c := range n.children {
		if c.name.Local == local && known(c.name.Space) {
			out = append(out, c)
		}
	}
	return out
}

// one returns the child named local, nil when absent and not required. An
// element that must appear once appearing twice is an error.
func (n *node) one(local string, required bool) (*node, error) {
	found := n.all(local)
	switch {
	case len(found) > 1:
		return nil, fmt.Errorf("%w: %s appears more than once (lines %d and %d)", ErrInvalid, found[0].path, found[0].line, found[1].line)
	case len(found) == 1:
		return found[0], nil
	case required:
		return nil, fmt.Errorf("%w: missing %s/%s", ErrInvalid, n.path, local)
	}
	return nil, nil
}

// text returns the trimmed text of the child named local, "" when it is
// absent or xsi:nil. A required element must be present and not empty.
func (n *node) text(local string, required bool) (string, error) {
	c, err := n.one(local, required)
	if err != nil || c == nil {
		return "", err
	}
	s := strings.TrimSpace(c.data.String())
	if c.isNil {
		s = ""
	}
	if s == "" && required {
		return "", fmt.Errorf("%w: %s is empty", ErrInvalid, c.path)
	}
	return s, nil
}

// flag reads a boolean child: "true" (any case) is true, any other text is
// false, and an absent, empty or nil element is def.
func (n *node) flag(local string, def bool) (bool, error) {
	s, err := n.text(local, false)
	if err != nil || s == "" {
		return def, err
	}
	return strings.EqualFold(s, "true"), nil
}

func describe(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}
