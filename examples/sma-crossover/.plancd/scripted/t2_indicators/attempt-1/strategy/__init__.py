"""Trading signals from moving averages."""
