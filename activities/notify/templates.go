package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"strings"
	texttemplate "text/template"
)

// The message templates: one layout for the plain-text body
// (templates/layout.txt, text/template) and one for the HTML body
// (layout.html, html/template, which escapes what it inserts), and per kind
// templates/<kind>.tmpl defining the words they frame: "title", "lead" and
// "next". A kind without its own file uses default.tmpl.
//
//go:embed templates/*.txt templates/*.html templates/*.tmpl
var templateFS embed.FS

type kindTemplates struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// templates holds each kind's two templates, parsed once: a template that
// does not parse stops the process at start, not a message at send time.
var templates = func() map[string]kindTemplates {
	files, err := fs.Glob(templateFS, "templates/*.tmpl")
	if err != nil || len(files) == 0 {
		panic(fmt.Sprintf("notify templates: %v", err))
	}
	out := map[string]kindTemplates{}
	for _, f := range files {
		kind := strings.TrimSuffix(path.Base(f), ".tmpl")
		out[kind] = kindTemplates{
			text: texttemplate.Must(texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/layout.txt")).ParseFS(templateFS, f)),
			html: htmltemplate.Must(htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/layout.html")).ParseFS(templateFS, f)),
		}
	}
	return out
}()

// TemplateData is what a template sees of its message.
type TemplateData struct {
	OrderID string
	Subject string
	Status  string
	// Total is the order's total with its currency ("12.50 USD").
	Total  string
	Reason string
	// Body is the outbox row's one-line text.
	Body string
}

// Render returns the plain-text and HTML bodies of m from its kind's templates.
func Render(m Message) (text, html string, err error) {
	d := TemplateData{OrderID: m.OrderID, Subject: m.Subject, Status: m.Status, Reason: m.Reason, Body: m.Body,
		Total: fmt.Sprintf("%d.%02d %s", m.TotalCents/100, m.TotalCents%100, m.Currency)}
	k, ok := templates[m.Kind]
	if !ok {
		k = templates["default"]
	}
	var t, h bytes.Buffer
	if err := k.text.ExecuteTemplate(&t, "layout.txt", d); err != nil {
		return "", "", fmt.Errorf("render %s text: %w", m.Kind, err)
	}
	if err := k.html.ExecuteTemplate(&h, "layout.html", d); err != nil {
		return "", "", fmt.Errorf("render %s html: %w", m.Kind, err)
	}
	return strings.TrimLeft(t.String(), "\n"), h.String(), nil
}
