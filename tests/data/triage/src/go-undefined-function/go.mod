module example.com/ind

go 1.19
