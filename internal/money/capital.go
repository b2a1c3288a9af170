package money

import "strings"

// Chinese capital numerals (大写数字), as written on invoices, cheques and
// contracts so that an amount cannot be altered.
var capitalDigits = [10]string{"零", "壹", "贰", "叁", "肆", "伍", "陆", "柒", "捌", "玖"}

// capitalUnits are the units of the positions of a four-digit group,
// lowest first.
var capitalUnits = [4]string{"", "拾", "佰", "仟"}

// Capital is the amount in Chinese capital numerals (大写金额), the form
// written on Chinese invoices and contracts:
//
//   - digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟 within a group of four
//     digits, groups joined by 万 and 亿; 10 is 壹拾, never 拾.
//   - Beyond 亿 the count of 亿 is itself read with 万, so 10¹² is
//     壹万亿 (not 壹兆, whose meaning varies): 1000000000000.00 →
//     壹万亿元整, 100050000000000.00 → 壹佰万零伍佰亿元整.
//   - One 零 stands for any run of zeros between two non-zero digits,
//     across groups too: 1004.05 → 壹仟零肆元零伍分, 100010.00 →
//     壹拾万零壹拾元整, 100000001.00 → 壹亿零壹元整. No 零 is written
//     after the yuan when only the 元 digit is zero (10.50 → 壹拾元伍角整),
//     but a zero 角 before a non-zero 分 is (10.05 → 壹拾元零伍分).
//   - The yuan are followed by 元 and the fraction by 角 and 分; "整"
//     closes an amount without 分: 10.00 → 壹拾元整, 1234.50 →
//     壹仟贰佰叁拾肆元伍角整. An amount below one yuan has no 元:
//     0.05 → 伍分, 0.50 → 伍角整; zero is 零元整.
//   - A negative amount is prefixed 负.
//
// Every amount Money can hold (up to MaxFen) has a capital form.
func Capital(m Money) string {
	fen := m.fen
	var b strings.Builder
	if fen < 0 {
		b.WriteString("负")
		fen = -fen
	}
	yuan, jiao, fenDigit := fen/100, fen/10%10, fen%10
	if yuan == 0 && jiao == 0 && fenDigit == 0 {
		return "零元整"
	}
	if yuan > 0 {
		b.WriteString(capitalInt(yuan))
		b.WriteString("元")
	}
	switch {
	case jiao == 0 && fenDigit == 0:
		b.WriteString("整")
	case fenDigit == 0:
		b.WriteString(capitalDigits[jiao] + "角整")
	case jiao == 0:
		if yuan > 0 {
			b.WriteString("零")
		}
		b.WriteString(capitalDigits[fenDigit] + "分")
	default:
		b.WriteString(capitalDigits[jiao] + "角" + capitalDigits[fenDigit] + "分")
	}
	return b.String()
}

// capitalInt reads n > 0: a count of 亿 and the rest, a count of 万 and the
// rest, or one group of up to four digits. The rest gets a leading 零 when
// it is not zero but shorter than its place (a zero digit, or a whole
// zero group, separates it from the part above).
func capitalInt(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{100_000_000, "亿"}, {10_000, "万"}} {
		if n < u.size {
			continue
		}
		s := capitalInt(n/u.size) + u.name
		rest := n % u.size
		switch {
		case rest == 0:
		case rest < u.size/10:
			s += "零" + capitalInt(rest)
		default:
			s += capitalInt(rest)
		}
		return s
	}
	return capitalGroup(n)
}

// capitalGroup reads 0 < n < 10000: digits with their units, one 零 for a
// run of zeros between non-zero digits, nothing for trailing zeros.
func capitalGroup(n int64) string {
	var b strings.Builder
	zero := false
	for pos := 3; pos >= 0; pos-- {
		d := n / pow10[pos] % 10
		if d == 0 {
			zero = b.Len() > 0
			continue
		}
		if zero {
			b.WriteString("零")
			zero = false
		}
		b.WriteString(capitalDigits[d] + capitalUnits[pos])
	}
	return b.String()
}

var pow10 = [4]int64{1, 10, 100, 1000}
