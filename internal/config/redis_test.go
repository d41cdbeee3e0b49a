package config

import (
	"reflect"
	"testing"
)

func TestRedisSentinelsAreReadAsAListWithTheMasterName(t *testing.T) {
	v := Load(envOf(map[string]string{"REDIS_SENTINELS": " s1:26379, s2:26379,,s3:26379 ", "REDIS_MASTER_NAME": "orderflow"}), Worker)
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := RedisSentinels.Get(v), []string{"s1:26379", "s2:26379", "s3:26379"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("REDIS_SENTINELS = %v, want %v", got, want)
	}
	if got := RedisMasterName.Get(v); got != "orderflow" {
		t.Fatalf("REDIS_MASTER_NAME = %q", got)
	}
	bad := Load(envOf(map[string]string{"REDIS_SENTINELS": "s1", "REDIS_MASTER_NAME": "orderflow"}), Worker)
	if bad.Err() == nil {
		t.Fatal("a Sentinel without a port was accepted")
	}
}
