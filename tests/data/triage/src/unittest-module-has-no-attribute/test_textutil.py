import unittest

import textutil


class CaseTest(unittest.TestCase):
    def test_snake(self):
        self.assertEqual(textutil.to_snake("HttpRequestId"), "http_request_id")

    def test_camel(self):
        self.assertEqual(textutil.to_camel("http_request_id"), "httpRequestId")

    def test_kebab(self):
        self.assertEqual(textutil.to_kebab("HttpRequestId"), "http-request-id")
