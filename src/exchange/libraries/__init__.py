"""The base information libraries (基础信息库): the population library (人口基础信息库) and
the legal-person library (法人基础信息库), gathered from the departments that are the source
of each element (一数一源) through the broker, and served to departments by key."""
