package fabric

import (
	"net/url"
	"regexp"
)

// rewriter rewrites the platform addresses in captured documents to the
// fabric's own. The rules apply in order, longest forms first, and no
// replacement can match a later rule.
type rewriter struct {
	rules []rewriteRule
}

type rewriteRule struct {
	re   *regexp.Regexp
	repl []byte
}

func newRewriter(a Addrs) (*rewriter, error) {
	hosts := map[string]string{}
	for name, raw := range map[string]string{"ws": a.Wireserver, "hgap": a.HostGAPlugin, "imds": a.IMDS} {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		hosts[name] = u.Host
	}
	blob := "http://" + hosts["ws"] + blobPrefix
	rules := []struct{ pattern, repl string }{
		// Storage blob URLs, also behind WALinuxAgent's test host
		// (http://mock-goal-state/acct.blob.core.windows.net/...): the
		// account stays as the first path segment under the blob prefix.
		{`(?:http://mock-goal-state/|https?://)([A-Za-z0-9-]+)\.blob\.core\.windows\.net(?::\d+)?/?`, blob + "${1}/"},
		{`http://mock-goal-state/?`, blob},
		{`https?://168\.63\.129\.16:32526`, "http://" + hosts["hgap"]},
		{`https?://168\.63\.129\.16(?::80)?`, "http://" + hosts["ws"]},
		{`https?://169\.254\.169\.254(?::80)?`, "http://" + hosts["imds"]},
		{`168\.63\.129\.16:32526`, hosts["hgap"]},
		{`168\.63\.129\.16(?::80)?`, hosts["ws"]},
		{`169\.254\.169\.254(?::80)?`, hosts["imds"]},
	}
	r := &rewriter{}
	for _, rule := range rules {
		r.rules = append(r.rules, rewriteRule{re: regexp.MustCompile(rule.pattern), repl: []byte(rule.repl)})
	}
	return r, nil
}

// rewrite returns doc with every platform address replaced.
func (r *rewriter) rewrite(doc []byte) []byte {
	for _, rule := range r.rules {
		doc = rule.re.ReplaceAll(doc, rule.repl)
	}
	return doc
}
