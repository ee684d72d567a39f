import dayjs from 'dayjs';

export function addBusinessDays(date, n) {
  let d = dayjs(date);
  while (n > 0) {
    d = d.add(1, 'day');
    if (d.day() !== 0 && d.day() !== 6) n--;
  }
  return d.format('YYYY-MM-DD');
}
