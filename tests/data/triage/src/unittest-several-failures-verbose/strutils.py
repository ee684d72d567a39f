def truncate(text, width, suffix="..."):
    if len(text) <= width:
        return text
    return text[:width] + suffix


def title_case(text):
    return " ".join(w.capitalize() for w in text.split(" "))


def count_words(text):
    counts = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


def is_palindrome(text):
    cleaned = [c.lower() for c in text if c.isalnum()]
    return cleaned == cleaned[::-1]
