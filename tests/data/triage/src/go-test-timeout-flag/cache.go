package cache

import "sync"

type Cache struct {
	mu   sync.Mutex
	data map[string]string
}

func New() *Cache { return &Cache{data: map[string]string{}} }

func (c *Cache) Get(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.data[k]
	return v, ok
}

// GetOrSet returns the cached value, computing and storing it when absent.
func (c *Cache) GetOrSet(k string, compute func() string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.Get(k); ok {
		return v
	}
	v := compute()
	c.data[k] = v
	return v
}
