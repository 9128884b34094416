package wireserver

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// node is one element of a parsed document: just enough of a DOM to look
// elements up by local name anywhere below a node, the way the platform's
// own agent does (getElementsByTagName), so namespaces, wrappers and unknown
// elements do not matter.
type node struct {
	name     string
	attrs    []xml.Attr
	text     []byte // character data directly inside the element
	children []*node
}

// maxElements bounds the trees built here. The documents parsed into trees
// (versions, goal state, hosting environment) have tens of elements; the
// bound keeps a broken or hostile body from costing memory.
const maxElements = 1 << 16

var utf8BOM = []byte("\xef\xbb\xbf")

// parseXML parses doc, which must hold one element whose local name is
// root, into a tree. A leading UTF-8 byte-order mark is ignored.
func parseXML(doc []byte, root string) (*node, error) {
	var top *node
	var stack []*node
	elements := 0
	err := decodeXML(doc, root, func(tok xml.Token) error {
		switch t := tok.(type) {
		case xml.StartElement:
			if elements++; elements > maxElements {
				return fmt.Errorf("more than %d elements", maxElements)
			}
			n := &node{name: t.Name.Local, attrs: t.Attr}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			} else {
				top = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				n := stack[len(stack)-1]
				n.text = append(n.text, t...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return top, nil
}

// checkXML reports whether doc is one well-formed element named root,
// without keeping anything: for documents stored opaque.
func checkXML(doc []byte, root string) error {
	return decodeXML(doc, root, func(xml.Token) error { return nil })
}

// decodeXML passes every token of doc to fn, checking that the document is
// well formed and has exactly one root element, named root.
func decodeXML(doc []byte, root string, fn func(xml.Token) error) error {
	d := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(doc, utf8BOM)))
	depth := 0
	seen := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				line, _ := d.InputPos()
				if seen != "" {
					return fmt.Errorf("line %d: second root element <%s> after <%s>", line, t.Name.Local, seen)
				}
				if t.Name.Local != root {
					return fmt.Errorf("line %d: root element is <%s>, want <%s>", line, t.Name.Local, root)
				}
				seen = t.Name.Local
			}
			depth++
		case xml.EndElement:
			depth--
		}
		if err := fn(tok); err != nil {
			line, _ := d.InputPos()
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if seen == "" {
		return fmt.Errorf("no <%s> element", root)
	}
	return nil
}

// find returns the first element named name below n in document order, or
// nil.
func (n *node) find(name string) *node {
	var found *node
	n.walk(func(e *node) bool {
		if e.name == name {
			found = e
			return false
		}
		return true
	})
	return found
}

// findAll returns every element named name below n in document order.
func (n *node) findAll(name string) []*node {
	var found []*node
	n.walk(func(e *node) bool {
		if e.name == name {
			found = append(found, e)
		}
		return true
	})
	return found
}

// walk visits the elements below n in document order until visit returns
// false. It keeps its own stack, so nesting depth cannot exhaust the
// goroutine's.
func (n *node) walk(visit func(*node) bool) {
	stack := make([]*node, 0, 16)
	for i := len(n.children) - 1; i >= 0; i-- {
		stack = append(stack, n.children[i])
	}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !visit(e) {
			return
		}
		for i := len(e.children) - 1; i >= 0; i-- {
			stack = append(stack, e.children[i])
		}
	}
}

// value is the trimmed text of n; "" when n is nil.
func (n *node) value() string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(string(n.text))
}

// attr is the value of n's attribute with local name name; "" when n is nil
// or has none.
func (n *node) attr(name string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// findValue is the trimmed text of the first element named name below n;
// "" when n is nil or has none.
func (n *node) findValue(name string) string {
	if n == nil {
		return ""
	}
	return n.find(name).value()
}
