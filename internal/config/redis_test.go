package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestRedisSentinelsAreReadAsAListAndLoggedWithTheMasterName(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://:redis-s3cret@cache:6379/0")
	t.Setenv("REDIS_SENTINELS", " s1:26379, s2:26379,,s3:26379 ")
	t.Setenv("REDIS_MASTER_NAME", "orderflow")
	c := LoadCommon()
	if want := []string{"s1:26379", "s2:26379", "s3:26379"}; !reflect.DeepEqual(c.RedisHA.Sentinels, want) || c.RedisHA.MasterName != "orderflow" {
		t.Fatalf("RedisHA = %+v, want %v and orderflow", c.RedisHA, want)
	}
	if s := c.String(); !strings.Contains(s, "sentinels:s1:26379,s2:26379,s3:26379/orderflow") || strings.Contains(s, "redis-s3cret") {
		t.Fatalf("logged settings: %s", s)
	}
}
