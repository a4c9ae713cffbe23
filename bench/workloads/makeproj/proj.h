long unit1(long n); long unit2(long n); long unit3(long n);
long unit4(long n); long unit5(long n); long unit6(long n);
