package lab

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
)

// HAProxyStatus reads an HAProxy status page (statsURL: .../stats;csv)
// and returns, per proxy (backend) and server, the server's status as
// HAProxy shows it ("UP", "DOWN", "UP 1/2", "no check"...). The proxies'
// own FRONTEND and BACKEND rows are left out.
func HAProxyStatus(ctx context.Context, statsURL string) (map[string]map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, statsURL, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("haproxy stats %s: %d rows, %v", statsURL, len(rows), err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.TrimPrefix(h, "# ")] = i
	}
	out := map[string]map[string]string{}
	for _, row := range rows[1:] {
		px, sv := row[col["pxname"]], row[col["svname"]]
		if sv == "FRONTEND" || sv == "BACKEND" {
			continue
		}
		if out[px] == nil {
			out[px] = map[string]string{}
		}
		out[px][sv] = row[col["status"]]
	}
	return out, nil
}
