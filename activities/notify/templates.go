package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

// The message templates, a plain-text (text/template) and an HTML
// (html/template, which escapes what it inserts) one per kind, in
// templates/<kind>.txt and .html; a kind without its own uses default.
//
//go:embed templates/*.txt templates/*.html
var templateFS embed.FS

var (
	textTemplates = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/*.txt"))
	htmlTemplates = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/*.html"))
)

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
	name := m.Kind
	if textTemplates.Lookup(name+".txt") == nil || htmlTemplates.Lookup(name+".html") == nil {
		name = "default"
	}
	var t, h bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&t, name+".txt", d); err != nil {
		return "", "", fmt.Errorf("render %s text: %w", m.Kind, err)
	}
	if err := htmlTemplates.ExecuteTemplate(&h, name+".html", d); err != nil {
		return "", "", fmt.Errorf("render %s html: %w", m.Kind, err)
	}
	return strings.TrimLeft(t.String(), "\n"), h.String(), nil
}
