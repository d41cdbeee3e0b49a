package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// HeaderRegion names a request's home region: the customer's region, whose
// database and namespace hold the customer's orders (docs/regions.md). The
// global entry point routes on it.
const HeaderRegion = "X-Orderflow-Region"

// homeRegion refuses a request whose X-Orderflow-Region is not one of the
// configured regions (400 unknown_region) or names another region than the
// one this gateway serves (421 wrong_region: the entry point sent it to the
// wrong backend, and it must not be served against another region's data).
// Without the header the gateway's own region is the home region.
func (s *Server) homeRegion(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sent := c.Request().Header.Values(HeaderRegion)
		if len(sent) == 0 {
			return next(c)
		}
		regions := s.Regions
		if len(regions) == 0 {
			regions = []string{s.Region}
		}
		if len(sent) > 1 || !slices.Contains(regions, sent[0]) {
			return newError(http.StatusBadRequest, "unknown_region", "the request names a region that is not configured",
				Detail{Field: HeaderRegion, Issue: "one of " + strings.Join(regions, ", ")})
		}
		if sent[0] != s.Region {
			return newError(http.StatusMisdirectedRequest, "wrong_region", "this gateway serves region "+s.Region,
				Detail{Field: HeaderRegion, Issue: "send the request to region " + sent[0] + "'s gateways"})
		}
		return next(c)
	}
}
