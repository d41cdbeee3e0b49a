package lab

import (
	"os"
	"os/user"
	"slices"
	"strconv"
	"testing"
)

// PostgreSQL started by a root lab runs as postgres with all of the
// account's groups: Debian's cluster reads its TLS key through ssl-cert,
// and a server with only its primary group exits at start.
func TestPostgresUserKeepsItsGroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lab switches users only as root")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres account here")
	}
	ids, err := u.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := PostgresUser()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		g, _ := strconv.Atoi(id)
		if !slices.Contains(cred.Groups, uint32(g)) {
			t.Errorf("the postgres process would lack group %s (has %v)", id, cred.Groups)
		}
	}
}
