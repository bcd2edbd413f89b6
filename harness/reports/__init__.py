"""Reports people read: JUnit, allure, HTML conformance report."""
