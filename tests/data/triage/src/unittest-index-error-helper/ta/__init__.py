from ta.bands import bollinger
