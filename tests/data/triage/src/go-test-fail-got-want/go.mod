module example.com/indicators

go 1.19
