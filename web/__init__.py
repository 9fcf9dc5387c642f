"""HTTP adapters: the tenant portal (:3100) and the admin API/console (:3000)."""
