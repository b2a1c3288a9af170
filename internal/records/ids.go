package records

import (
	"github.com/google/uuid"

	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/user"
)

func userIDIn(ids []uuid.UUID) predicate.User { return user.IDIn(ids...) }

func poolIDIn(ids []uuid.UUID) predicate.Pool { return entpool.IDIn(ids...) }
