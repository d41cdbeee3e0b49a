package api

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/orderflow/orderflow"
)

// Limits of a shipping address, in bytes of UTF-8.
const (
	maxAddressName = 200
	maxAddressLine = 200
	maxCity        = 100
	maxState       = 100
)

// countries are the officially assigned ISO 3166-1 alpha-2 codes.
var countries = func() map[string]bool {
	const codes = `AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
		CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
		GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP
		KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT
		MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
		SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
		UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW`
	m := map[string]bool{}
	for _, c := range strings.Fields(codes) {
		m[c] = true
	}
	return m
}()

// noPostalCodes are the countries whose addresses carry no postal code; in
// any other, postal_code is required.
var noPostalCodes = map[string]bool{
	"AE": true, "AG": true, "AO": true, "AW": true, "BF": true, "BI": true, "BJ": true, "BO": true, "BS": true, "BW": true,
	"BZ": true, "CD": true, "CF": true, "CG": true, "CI": true, "CK": true, "CM": true, "DJ": true, "DM": true, "ER": true,
	"FJ": true, "GA": true, "GD": true, "GH": true, "GM": true, "GQ": true, "GY": true, "HK": true, "JM": true, "KI": true,
	"KM": true, "KN": true, "KP": true, "LY": true, "ML": true, "MO": true, "MR": true, "NR": true, "NU": true, "QA": true,
	"RW": true, "SB": true, "SC": true, "SL": true, "SR": true, "ST": true, "SY": true, "TD": true, "TF": true, "TG": true,
	"TK": true, "TL": true, "TO": true, "TV": true, "UG": true, "VU": true, "YE": true, "ZW": true,
}

// postalPattern is a postal code in any country's form: letters, digits,
// spaces and hyphens, starting and ending with a letter or digit.
var postalPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9 -]{0,14}[A-Za-z0-9])?$`)

// plainText reports whether s is text a label, a page or a carrier's system
// shows as it is: at most max bytes, something besides spaces, and no
// control or invisible format character (PostgreSQL text refuses NUL; a
// right-to-left override would make an address read as another).
func plainText(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s) && strings.TrimSpace(s) != "" &&
		strings.IndexFunc(s, func(c rune) bool { return unicode.IsControl(c) || unicode.Is(unicode.Cf, c) }) < 0
}

// validateAddress returns a detail for every problem of a shipping address,
// each naming its field under prefix ("shipping_address.city").
func validateAddress(prefix string, a *orderflow.Address) []Detail {
	if a == nil {
		return []Detail{{Field: prefix, Issue: "required: the address the order ships to"}}
	}
	var d []Detail
	text := func(field, v string, max int, optional bool) {
		if (optional && v == "") || plainText(v, max) {
			return
		}
		issue := "required: "
		if optional {
			issue = "when given: "
		}
		d = append(d, Detail{Field: prefix + "." + field, Issue: issue + "1-" + strconv.Itoa(max) + " bytes of text without control characters"})
	}
	text("name", a.Name, maxAddressName, false)
	text("line1", a.Line1, maxAddressLine, false)
	text("line2", a.Line2, maxAddressLine, true)
	text("city", a.City, maxCity, false)
	text("state", a.State, maxState, true)
	country := countries[a.Country]
	if !country {
		d = append(d, Detail{Field: prefix + ".country", Issue: "required: an ISO 3166-1 alpha-2 code in capitals, such as US or DE"})
	}
	switch {
	case a.PostalCode == "" && country && !noPostalCodes[a.Country]:
		d = append(d, Detail{Field: prefix + ".postal_code", Issue: "required in " + a.Country})
	case a.PostalCode != "" && !postalPattern.MatchString(a.PostalCode):
		d = append(d, Detail{Field: prefix + ".postal_code", Issue: "1-16 letters, digits, spaces and hyphens"})
	}
	return d
}
