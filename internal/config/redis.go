package config

import "strings"

// RedisHA names the Sentinels that watch a replicated Redis. When both are
// set the processes reach Redis through them: they ask the Sentinels for the
// master and follow a failover; REDIS_URL then gives only the password and
// database number.
//
// Declared in one block so that the settings mechanism can take it over as
// it is: REDIS_SENTINELS (comma-separated host:port list) and
// REDIS_MASTER_NAME (the name the Sentinels monitor). One set without the
// other stops the process (cache.Connect names both).
type RedisHA struct {
	Sentinels  []string
	MasterName string
}

// LoadRedisHA reads REDIS_SENTINELS and REDIS_MASTER_NAME.
func LoadRedisHA() RedisHA {
	var r RedisHA
	for _, a := range strings.Split(Env("REDIS_SENTINELS", ""), ",") {
		if a = strings.TrimSpace(a); a != "" {
			r.Sentinels = append(r.Sentinels, a)
		}
	}
	r.MasterName = Env("REDIS_MASTER_NAME", "")
	return r
}
